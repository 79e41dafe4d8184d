//! End-to-end tests: real nodes on loopback, faults injected, convergence checked.

mod proxy;
