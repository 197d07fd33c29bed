import { BlockList, isIP } from "node:net";

// 127.0.0.0/8 and ::1, checked by node's own address parser: it knows every spelling of an
// address ("::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"), and a name that merely starts with
// "127." ("127.example.com") is not an address at all.
const loopback = new BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");

/**
 * True for a host only this machine can reach: `localhost`, an
 * address in 127.0.0.0/8, or `::1` (bracketed or not). The one loopback check of rekey: plain
 * http, a server without TLS and a bearer token left out are allowed only where it says so.
 */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  // `localhost` itself only: a subdomain of it (RFC 6761) is resolved by DNS on many systems.
  if (name === "localhost") return true;
  const family = isIP(name);
  if (family === 4) return loopback.check(name, "ipv4");
  if (family === 6) return loopback.check(name, "ipv6");
  return false;
}
