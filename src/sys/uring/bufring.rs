//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`, Linux 5.19): buffers the kernel
//! picks from when data arrives, instead of one buffer parked in every idle recv.
//!
//! The ring is an array of `{addr, len, bid}` entries in memory shared with the kernel.
//! We add a buffer by writing the entry at our tail and publishing the new tail (a
//! release store: the kernel must see the entry before the tail that covers it); the
//! kernel takes buffers from its head. A completion that used one names it by `bid`
//! (`IORING_CQE_F_BUFFER`): from then until [`BufRing::give_back`] it is ours, and the
//! kernel will not write it. `lent` tracks that, so reading a buffer the kernel may be
//! filling is refused instead of racing.

use io_uring::types::BufRingEntry;
use io_uring::Submitter;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// The shared ring of entries, its buffers, and which buffers are ours right now.
pub struct BufRing {
    entries: *mut BufRingEntry,
    map_len: usize,
    count: u16,
    tail: u16,
    group: u16,
    buf_size: usize,
    /// The buffers' memory: never resized, so the addresses given to the kernel hold.
    mem: Box<[u8]>,
    lent: Vec<bool>,
    out: usize,
}

impl BufRing {
    /// Map a ring of `count` entries (a power of two, at most 32768), register it as
    /// buffer group `group`, and give the kernel all `count` buffers of `buf_size` bytes.
    pub fn register(
        submitter: &Submitter<'_>,
        group: u16,
        count: u16,
        buf_size: usize,
    ) -> io::Result<BufRing> {
        if !count.is_power_of_two() || count > 32768 || u32::try_from(buf_size).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a buffer ring needs a power-of-two count up to 32768 and buffers under 4 GiB",
            ));
        }
        let map_len = usize::from(count) * std::mem::size_of::<BufRingEntry>();
        let ptr = map(map_len)?;
        let mut ring = BufRing {
            entries: ptr,
            map_len,
            count,
            tail: 0,
            group,
            buf_size,
            mem: vec![0u8; usize::from(count) * buf_size].into_boxed_slice(),
            lent: vec![true; usize::from(count)],
            out: usize::from(count),
        };
        // SAFETY: `entries` is a mapping of `count` entries that lives as long as `ring`,
        // and `ring` outlives the registration (unregistered or leaked in Ring's drop).
        unsafe {
            submitter.register_buf_ring_with_flags(ptr as u64, count, group, 0)?;
        }
        for bid in 0..count {
            ring.give_back(bid);
        }
        Ok(ring)
    }

    /// The buffer group id recvs name.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// The size of every buffer.
    pub fn buf_size(&self) -> u32 {
        u32::try_from(self.buf_size).unwrap_or(u32::MAX)
    }

    /// Buffers the kernel holds now.
    pub fn free(&self) -> usize {
        usize::from(self.count) - self.out
    }

    /// A completion named `bid`: it is ours until given back.
    pub fn lend(&mut self, bid: u16) {
        if let Some(l) = self.lent.get_mut(usize::from(bid)) {
            if !*l {
                *l = true;
                self.out += 1;
            }
        }
    }

    /// The first `len` bytes of `bid`, if it is lent to us now.
    pub fn lent(&self, bid: u16, len: usize) -> Option<&[u8]> {
        let i = usize::from(bid);
        if !self.lent.get(i).copied().unwrap_or(false) || len > self.buf_size {
            return None;
        }
        self.mem.get(i * self.buf_size..i * self.buf_size + len)
    }

    /// Put `bid` back at the tail for the kernel to use again.
    pub fn give_back(&mut self, bid: u16) {
        let i = usize::from(bid);
        if !self.lent.get(i).copied().unwrap_or(false) {
            return; // not ours: giving it twice would let the kernel fill it twice
        }
        self.lent[i] = false;
        self.out -= 1;
        let addr = self.mem[i * self.buf_size..].as_ptr() as u64;
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot` < count, inside the mapping. The kernel reads entries only
        // between its head and the tail we publish, and this slot is past that tail.
        // (Entry 0's last field is the tail itself; the setters do not touch it.)
        let entry = unsafe { &mut *self.entries.add(slot) };
        entry.set_addr(addr);
        entry.set_len(self.buf_size());
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail is a u16 in the mapping, aligned as one; the kernel reads it
        // with acquire ordering, so the entry written above is visible before it.
        let tail = unsafe { &*(BufRingEntry::tail(self.entries).cast::<AtomicU16>()) };
        tail.store(self.tail, Ordering::Release);
    }
}

/// Fresh zeroed pages for `len` bytes of ring entries.
fn map(len: usize) -> io::Result<*mut BufRingEntry> {
    // SAFETY: an anonymous private mapping asks for fresh zeroed pages and touches no
    // memory of ours; the kernel wants the ring page-aligned, which mmap gives.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(ptr.cast())
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `register`, of `map_len` bytes, used by nobody now:
        // the ring unregisters it first (or leaks us while operations are in flight).
        unsafe { libc::munmap(self.entries.cast(), self.map_len) };
    }
}
