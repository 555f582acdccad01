//! One connection of the uring echo: its recv, its send, and closing it with either in
//! flight. Who owns which buffer when is the whole lesson here.

use super::user_data::{name, Op};
use super::{Server, BUF_SIZE, HIGH_WATER, LOW_WATER};
use crate::sys::uring::{Completion, Target};
use std::net::TcpStream;
use std::os::fd::AsRawFd;

/// A connection. The bytes of a send in flight are not here: the ring holds them.
pub(super) struct Conn {
    /// Owned here so that dropping the connection closes it.
    _sock: TcpStream,
    /// What operations name: the socket's registered-file slot, or its fd.
    target: Target,
    pub(super) gen: u32,
    /// A recv is in flight.
    pub(super) reading: bool,
    /// A send is in flight, of this many bytes in all, this many of them sent already.
    sending: bool,
    flight_len: usize,
    flight_sent: usize,
    /// Echo bytes that arrived while a send was in flight: ours to append to.
    out: Vec<u8>,
    /// The last send's buffer, back from the kernel: the next `out`, capacity kept.
    spare: Vec<u8>,
    /// Without a provided-buffer ring: our read buffer, when no recv holds it.
    rbuf: Option<Vec<u8>>,
    /// No recv until the queue drains to LOW_WATER.
    paused: bool,
    /// The peer sent FIN: flush what is queued, then close.
    eof: bool,
}

impl Conn {
    pub(super) fn new(sock: TcpStream, target: Option<Target>, gen: u32) -> Conn {
        // Echoes are small and answered at once; Nagle would hold them back.
        let _ = sock.set_nodelay(true);
        Conn {
            target: target.unwrap_or(Target::Fd(sock.as_raw_fd())),
            _sock: sock,
            gen,
            reading: false,
            sending: false,
            flight_len: 0,
            flight_sent: 0,
            out: Vec::new(),
            spare: Vec::new(),
            rbuf: None,
            paused: false,
            eof: false,
        }
    }

    /// Bytes received and not yet sent back.
    fn queued(&self) -> usize {
        self.out.len() + (self.flight_len - self.flight_sent)
    }
}

impl Server {
    /// Put a recv in flight, unless one is. With a buffer ring it is multishot where the
    /// kernel has it (6.0): one recv that completes once per arrival until stopped.
    /// `quiet`: the peer has all we read and waits for its echo, so a single-shot recv
    /// should wait for data before trying (no doomed first attempt).
    pub(super) fn arm_recv(&mut self, key: usize, quiet: bool) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.reading || c.paused || c.eof {
            return;
        }
        let (fd, ud) = (c.target, name(key, c.gen, Op::Recv));
        let armed = match (self.stats.features.buf_ring, self.stats.multishot_recv) {
            (true, true) => self.ring.recv_multishot(fd, ud),
            (true, false) => self.ring.recv_provided(fd, quiet, ud),
            _ => {
                let buf = c.rbuf.take().unwrap_or_else(|| vec![0; BUF_SIZE]);
                self.ring.recv(fd, buf, ud)
            }
        };
        match armed {
            Ok(()) => c.reading = true,
            Err(_) => self.close(key, true),
        }
    }

    pub(super) fn on_recv(&mut self, key: usize, mut done: Completion) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.reading = done.more;
        if let Some(buf) = done.buf.take() {
            c.rbuf = Some(buf); // the kernel is done with our read buffer
        }
        let n = match done.io_result() {
            Ok(0) => {
                c.eof = true;
                return self.close_if_flushed(key);
            }
            Ok(n) => n,
            Err(e) => return self.on_recv_error(key, e),
        };
        let bytes = match (done.buffer, &c.rbuf) {
            (Some(bid), _) => self.ring.lent(bid, n),
            (None, Some(own)) => own.get(..n),
            (None, None) => None,
        };
        c.out.extend_from_slice(bytes.unwrap_or(&[]));
        if let Some(bid) = done.buffer {
            self.ring.give_back(bid); // copied out: the kernel may fill it again
        }
        self.stats.echo.bytes += n as u64;
        self.pause_if_over(key);
        self.start_send(key);
        self.arm_recv(key, n < BUF_SIZE);
    }

    /// Backpressure: past HIGH_WATER, no more recvs until the queue drains.
    fn pause_if_over(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let queued = c.queued();
        self.stats.echo.max_queue = self.stats.echo.max_queue.max(queued);
        if queued <= HIGH_WATER || c.paused {
            return;
        }
        c.paused = true;
        self.stats.echo.paused += 1;
        if c.reading {
            // A multishot recv goes on until stopped. What it delivers before the cancel
            // lands is still queued: the bound is HIGH_WATER + one batch (QUEUE_BOUND).
            let (target, ud) = (name(key, c.gen, Op::Recv), name(key, c.gen, Op::CancelRecv));
            self.stats.cancels += 1;
            if self.ring.cancel(target, ud).is_err() {
                self.close(key, true); // an unstoppable recv would be unbounded
            }
        }
    }

    /// A recv that ended without data: out of buffers, cancelled for backpressure, a
    /// kernel without multishot recv, or the connection's end.
    fn on_recv_error(&mut self, key: usize, e: std::io::Error) {
        let Some(c) = self.conns.get(key) else {
            return;
        };
        match e.raw_os_error() {
            Some(libc::ENOBUFS) => {
                self.stats.no_buffer += 1;
                self.starved.push((key, c.gen));
            }
            Some(libc::ECANCELED) if c.paused => {} // our backpressure cancel: resumed later
            Some(libc::EINVAL) if self.stats.multishot_recv => {
                self.stats.multishot_recv = false;
                self.arm_recv(key, false);
            }
            _ => self.close(key, true),
        }
    }

    /// Move `out` into the ring as the send in flight, if none is.
    fn start_send(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.sending || c.out.is_empty() {
            return;
        }
        let next = std::mem::take(&mut c.spare);
        let buf = std::mem::replace(&mut c.out, next);
        (c.flight_len, c.flight_sent) = (buf.len(), 0);
        let (fd, ud) = (c.target, name(key, c.gen, Op::Send));
        match self.ring.send(fd, buf, 0, ud) {
            Ok(()) => c.sending = true,
            Err(_) => self.close(key, true),
        }
    }

    pub(super) fn on_send(&mut self, key: usize, mut done: Completion) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.sending = false;
        let Some(mut buf) = done.buf.take() else {
            return self.close(key, true);
        };
        match done.io_result() {
            Ok(n) if n > 0 => c.flight_sent += n,
            _ => return self.close(key, true), // reset, broken pipe, or no progress
        }
        if c.flight_sent < c.flight_len {
            // A short send: the rest of the same buffer goes back to the kernel.
            let (fd, ud, from) = (c.target, name(key, c.gen, Op::Send), c.flight_sent);
            return match self.ring.send(fd, buf, from, ud) {
                Ok(()) => c.sending = true,
                Err(_) => self.close(key, true),
            };
        }
        (c.flight_len, c.flight_sent) = (0, 0);
        buf.clear();
        if buf.capacity() > 64 * 1024 {
            buf.shrink_to(64 * 1024); // a burst must not pin a megabyte per connection
        }
        c.spare = buf;
        let resume = c.paused && c.queued() <= LOW_WATER;
        if resume {
            c.paused = false;
        }
        self.start_send(key);
        if resume {
            self.arm_recv(key, false); // unless the cancelled recv has not ended yet
        }
        self.close_if_flushed(key);
    }

    fn close_if_flushed(&mut self, key: usize) {
        if let Some(c) = self.conns.get(key) {
            if c.eof && !c.sending && c.out.is_empty() {
                // Half-close done: every echo is out; close sends our FIN after them.
                self.close(key, false);
            }
        }
    }

    /// Free the slot and close the fd now; cancel what is in flight. The kernel keeps
    /// the socket open until those operations complete, and their completions arrive
    /// for a slot that is gone: `on_completion` drops them by their generation.
    pub(super) fn close(&mut self, key: usize, failed: bool) {
        if !self.conns.contains(key) {
            return;
        }
        let c = self.conns.remove(key);
        if failed {
            self.stats.echo.errors += 1;
        }
        for (busy, op, cancel) in [
            (c.reading, Op::Recv, Op::CancelRecv),
            (c.sending, Op::Send, Op::CancelSend),
        ] {
            if busy {
                self.stats.cancels += 1;
                let _ = self
                    .ring
                    .cancel(name(key, c.gen, op), name(key, c.gen, cancel));
            }
        }
        if let Target::Slot(slot) = c.target {
            let _ = self.ring.set_slot(slot, None);
        }
        drop(c); // closes the fd; a recv or send in flight still holds the socket
    }
}
