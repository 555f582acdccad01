//! Servers built on the loop.
