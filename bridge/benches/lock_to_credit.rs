//! Lock-to-credit latency on loopback (placeholder until the harness lands).

fn main() {}
