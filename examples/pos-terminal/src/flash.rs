//! The snapshot journal: an append-only log of records in one simulated flash sector.
//!
//! The sector behaves like NOR flash: erasing sets every byte to `0xFF`, programming can only
//! clear bits, and power can fail in the middle of programming a record. Each record is
//!
//! | bytes | field |
//! |---|---|
//! | 2 | magic `0x5053` (little endian) |
//! | 2 | payload length |
//! | 4 | journal position: the shift step whose outcome this record persists |
//! | 1 + n | order id length, order id |
//! | rest of payload | the payment's snapshot (`paystate::snapshot`) |
//! | 4 | CRC-32 (ISO-HDLC) over all of the above |
//!
//! padded with erased bytes to a 4-byte boundary. On boot every record whose CRC holds is
//! read in order, the last one of each order wins; a record whose CRC fails (a torn write, a
//! flipped bit) is reported and skipped, and the scan resynchronises on the next 4-byte
//! boundary, so the previous record of that order stays the one in force.

use crc::{CRC_32_ISO_HDLC, Crc};
use paystate::snapshot;

/// Size of the simulated sector.
pub const SECTOR_SIZE: usize = 4096;
const MAGIC: [u8; 2] = 0x5053u16.to_le_bytes();
const HEADER: usize = 8;
const TRAILER: usize = 4;
/// The largest record: header, order id, snapshot and CRC.
pub const MAX_RECORD: usize = HEADER + 1 + 64 + snapshot::MAX_SIZE + TRAILER;
const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// One erasable sector of NOR flash, simulated in RAM.
pub struct Sector {
    bytes: [u8; SECTOR_SIZE],
}

/// Why a record could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// The sector has no room left for this record.
    Full {
        /// Bytes the record needs.
        needed: usize,
        /// Bytes left in the sector.
        left: usize,
    },
    /// The order id or the snapshot does not fit a record.
    TooLarge,
    /// Power failed while programming: only the first bytes reached the flash.
    PowerLost {
        /// Where the record starts.
        at: usize,
        /// Bytes that reached the flash.
        written: usize,
        /// The record's length.
        len: usize,
    },
}

impl Sector {
    /// A freshly erased sector.
    pub const fn erased() -> Sector {
        Sector {
            bytes: [0xFF; SECTOR_SIZE],
        }
    }

    /// Erases the whole sector (every byte back to `0xFF`).
    pub fn erase(&mut self) {
        self.bytes.fill(0xFF);
    }

    /// Whether every byte is erased.
    pub fn is_erased(&self) -> bool {
        self.bytes.iter().all(|&b| b == 0xFF)
    }

    /// NOR programming: bits can only go from 1 to 0.
    fn program(&mut self, offset: usize, data: &[u8]) -> bool {
        match self
            .bytes
            .get_mut(offset..)
            .and_then(|rest| rest.get_mut(..data.len()))
        {
            Some(cells) => {
                for (cell, byte) in cells.iter_mut().zip(data) {
                    *cell &= *byte;
                }
                true
            }
            None => false,
        }
    }
}

/// A record read back from the sector.
pub struct Record<'a> {
    /// Where the record starts.
    pub offset: usize,
    /// The shift step whose outcome it persists.
    pub position: u32,
    /// The order id.
    pub order_id: &'a [u8],
    /// The payment's snapshot bytes.
    pub snapshot: &'a [u8],
}

/// Something the scan found that is not a record.
pub struct Damage {
    /// Where the damaged span starts.
    pub offset: usize,
    /// How long it is, up to the next good record or the erased tail.
    pub len: usize,
}

/// What a scan of the sector yields, in order.
pub enum Entry<'a> {
    /// A record whose CRC holds.
    Record(Record<'a>),
    /// Bytes that are neither erased nor a valid record (a torn write).
    Damaged(Damage),
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The write side of the journal. The write offset lives in RAM and is recomputed by
/// [`Journal::open`] after a power loss.
pub struct Journal {
    next: usize,
}

impl Journal {
    /// Opens the journal on `sector`: new records go after the last programmed byte, so a
    /// torn record is never overwritten (NOR flash cannot be reprogrammed without an erase).
    pub fn open(sector: &Sector) -> Journal {
        let used = sector
            .bytes
            .iter()
            .rposition(|&b| b != 0xFF)
            .map_or(0, |last| last + 1);
        Journal { next: align4(used) }
    }

    /// Appends one record. With `cut_power`, the power fails halfway through programming it:
    /// the first half reaches the flash and [`WriteError::PowerLost`] is returned. Returns the
    /// record's offset and length.
    pub fn append(
        &mut self,
        sector: &mut Sector,
        position: u32,
        order_id: &[u8],
        snapshot: &[u8],
        cut_power: bool,
    ) -> Result<(usize, usize), WriteError> {
        let mut buf = [0xFFu8; MAX_RECORD];
        let id_len = u8::try_from(order_id.len()).map_err(|_| WriteError::TooLarge)?;
        let payload = 1 + order_id.len() + snapshot.len();
        let payload_len = u16::try_from(payload).map_err(|_| WriteError::TooLarge)?;
        let mut w = Cursor {
            buf: &mut buf,
            at: 0,
        };
        w.put(&MAGIC)?;
        w.put(&payload_len.to_le_bytes())?;
        w.put(&position.to_le_bytes())?;
        w.put(&[id_len])?;
        w.put(order_id)?;
        w.put(snapshot)?;
        let crc = CRC32.checksum(w.written());
        w.put(&crc.to_le_bytes())?;
        let total = w.at;

        let left = SECTOR_SIZE.saturating_sub(self.next);
        if total > left {
            return Err(WriteError::Full {
                needed: total,
                left,
            });
        }
        let at = self.next;
        let bytes = buf.get(..total).ok_or(WriteError::TooLarge)?;
        if cut_power {
            let half = bytes.get(..total / 2).ok_or(WriteError::TooLarge)?;
            sector.program(at, half);
            return Err(WriteError::PowerLost {
                at,
                written: half.len(),
                len: total,
            });
        }
        if !sector.program(at, bytes) {
            return Err(WriteError::Full {
                needed: total,
                left,
            });
        }
        self.next = align4(at + total);
        Ok((at, total))
    }
}

struct Cursor<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, data: &[u8]) -> Result<(), WriteError> {
        let end = self.at + data.len();
        self.buf
            .get_mut(self.at..end)
            .ok_or(WriteError::TooLarge)?
            .copy_from_slice(data);
        self.at = end;
        Ok(())
    }

    fn written(&self) -> &[u8] {
        self.buf.get(..self.at).unwrap_or(&[])
    }
}

/// Reads the record at `offset`, if a valid one starts there.
fn record_at(bytes: &[u8], offset: usize) -> Option<Record<'_>> {
    let rest = bytes.get(offset..)?;
    let header = rest.get(..HEADER)?;
    if header.get(..2)? != MAGIC {
        return None;
    }
    let payload = usize::from(u16::from_le_bytes([*header.get(2)?, *header.get(3)?]));
    let position = u32::from_le_bytes(header.get(4..8)?.try_into().ok()?);
    let signed = rest.get(..HEADER + payload)?;
    let stored = rest.get(HEADER + payload..HEADER + payload + TRAILER)?;
    if CRC32.checksum(signed).to_le_bytes() != stored {
        return None;
    }
    let body = signed.get(HEADER..)?;
    let (&id_len, body) = body.split_first()?;
    let order_id = body.get(..usize::from(id_len))?;
    let snapshot = body.get(usize::from(id_len)..)?;
    Some(Record {
        offset,
        position,
        order_id,
        snapshot,
    })
}

/// Reads the sector from the start: every valid record and every damaged span, in order,
/// up to the erased tail.
pub fn scan(sector: &Sector) -> impl Iterator<Item = Entry<'_>> {
    let bytes = &sector.bytes[..];
    let end = bytes
        .iter()
        .rposition(|&b| b != 0xFF)
        .map_or(0, |last| last + 1);
    let mut at = 0usize;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        if let Some(record) = record_at(bytes, at) {
            let len = HEADER + 1 + record.order_id.len() + record.snapshot.len() + TRAILER;
            at = align4(at + len);
            return Some(Entry::Record(record));
        }
        // Damaged: resynchronise on the next 4-byte boundary where a valid record starts.
        let start = at;
        at += 4;
        while at < end && record_at(bytes, at).is_none() {
            at += 4;
        }
        Some(Entry::Damaged(Damage {
            offset: start,
            len: at.min(end) - start,
        }))
    })
}
