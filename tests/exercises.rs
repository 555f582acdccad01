//! The book, run: every "Try this" of the chapters (the exercise variants in
//! `exercises/`, or the commands a chapter gives), and every trace or output a chapter or
//! an example's header quotes, checked against what the program really prints.
//!
//! Programs run as child processes, as a learner runs them, each with a deadline.
//! Output is compared by its essential text: `exercise::shape` turns every figure into
//! `N`, so times, tick numbers and fds may vary and the words, rules and order may not.
//! Where a figure matters, it is checked as an order, a count, a ratio or a "never
//! early", never as a time that only holds on an idle machine. Each test also checks
//! that the text it verifies is still in the book (`exercise::says`), so neither can
//! change without the other.

#[path = "util/exercise.rs"]
mod exercise;
#[path = "util/http.rs"]
mod http;

#[path = "exercises/ch01.rs"]
mod ch01;
#[path = "exercises/ch02.rs"]
mod ch02;
#[path = "exercises/ch03.rs"]
mod ch03;
#[path = "exercises/ch04.rs"]
mod ch04;
#[path = "exercises/ch05.rs"]
mod ch05;
#[path = "exercises/ch06.rs"]
mod ch06;
#[path = "exercises/ch07.rs"]
mod ch07;
#[path = "exercises/ch09.rs"]
mod ch09;
#[path = "exercises/ch10.rs"]
mod ch10;
#[path = "exercises/ch11.rs"]
mod ch11;
#[path = "exercises/cli.rs"]
mod cli;
#[path = "exercises/headers.rs"]
mod headers;
