export { providePostgres as default } from "./testing/provide-postgres.js";
