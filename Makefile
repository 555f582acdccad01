# looplab: the two commands the README promises, and a few more.
#   make bench   thread-per-connection vs the event loop: a quick sweep, table + plot
#   make test    fmt check, clippy -D warnings, build examples, every test and doctest,
#                then one total line (installs chromium for the browser test when missing)

CARGO ?= cargo
OUT   ?= bench-out

.PHONY: test bench bench-full bench-timers fmt clippy doc

test:
	bash .ci/install-browser
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --features peer-tokio -- -D warnings
	$(CARGO) clippy --no-default-features --lib -- -D warnings   # the core alone: mio, libc, slab, socket2, crossbeam-channel, thiserror
	$(CARGO) build --examples
	bash .ci/tests-with-total "$(CARGO)"

bench:
	$(CARGO) run --release -- bench --out $(OUT)

bench-full:
	$(CARGO) run --release -- bench --full --out $(OUT)

bench-timers:
	$(CARGO) run --release -- bench --timers

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps
