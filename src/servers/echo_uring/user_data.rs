//! The 64 bits that name an operation: which connection (slab key and generation) and
//! which operation, so that a completion finds its connection, and a late one for a slot
//! that now serves another connection is recognised by its generation.

use super::MAX_CONNS;

/// What an operation is; the low byte of its user_data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Accept = 1,
    Recv = 2,
    Send = 3,
    CancelRecv = 4,
    CancelSend = 5,
    Tick = 6,
    CancelAccept = 7,
    CancelTick = 8,
}

/// The key of the listener's and the clock's operations: never a connection's.
pub(super) const SERVER: usize = MAX_CONNS;

pub(super) fn name(key: usize, gen: u32, op: Op) -> u64 {
    (u64::from(gen) << 32) | ((key as u64 & 0xff_ffff) << 8) | op as u64
}

pub(super) fn parse(user_data: u64) -> (usize, u32, Option<Op>) {
    let op = match user_data & 0xff {
        1 => Some(Op::Accept),
        2 => Some(Op::Recv),
        3 => Some(Op::Send),
        4 => Some(Op::CancelRecv),
        5 => Some(Op::CancelSend),
        6 => Some(Op::Tick),
        7 => Some(Op::CancelAccept),
        8 => Some(Op::CancelTick),
        _ => None,
    };
    (
        ((user_data >> 8) & 0xff_ffff) as usize,
        (user_data >> 32) as u32,
        op,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field survives the round trip through user_data, at the edges of each.
    #[test]
    fn user_data_names_key_generation_and_op() {
        for (key, gen, op) in [
            (0, 0, Op::Accept),
            (MAX_CONNS, u32::MAX, Op::Send),
            (12345, 7, Op::CancelRecv),
            (1, 1 << 31, Op::Tick),
        ] {
            assert_eq!(parse(name(key, gen, op)), (key, gen, Some(op)));
        }
        assert_ne!(name(5, 1, Op::Recv), name(5, 2, Op::Recv));
        assert_eq!(parse(0).2, None);
    }
}
