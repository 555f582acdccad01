//! The parts of the `looplab` command line, one file each (the binary's, not the library's).

pub(crate) mod args;
pub(crate) mod bench;
pub(crate) mod serve;

pub(crate) use {args::*, bench::*, serve::*};
