//! Tolerance for layers whose tar stream stops right after the last entry's data, without the
//! padding to a 512-byte block and without the end-of-archive blocks (some image builders write
//! them so; umoci is one).
//!
//! Only that case is forgiven: when the stream ends exactly where the current entry's data ends,
//! the tar parser is handed zeros up to the block boundary and then the end. A stream that ends
//! inside an entry's data is still truncated. The diff ID is hashed below this wrapper, over the
//! real bytes, so verification is unchanged.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

const BLOCK: u64 = 512;

/// Where the data of the entry being unpacked ends in the stream; set by the unpack loop.
#[derive(Clone, Default)]
pub struct EntryDataEnd(Rc<Cell<Option<u64>>>);

impl EntryDataEnd {
    pub fn set(&self, offset: u64) {
        self.0.set(Some(offset));
    }
}

pub struct BlockPadded<R> {
    inner: R,
    position: u64,
    entry_data_end: EntryDataEnd,
    /// Zeros still to hand out after the inner stream ended where an entry's data ends.
    padding: Option<u64>,
}

impl<R: Read> BlockPadded<R> {
    pub fn new(inner: R) -> (Self, EntryDataEnd) {
        let entry_data_end = EntryDataEnd::default();
        let reader = BlockPadded {
            inner,
            position: 0,
            entry_data_end: entry_data_end.clone(),
            padding: None,
        };
        (reader, entry_data_end)
    }
}

impl<R: Read> Read for BlockPadded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.padding.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.position += n as u64;
                return Ok(n);
            }
            let ended_after_entry_data = self.entry_data_end.0.get() == Some(self.position);
            let deficit = (BLOCK - self.position % BLOCK) % BLOCK;
            self.padding = Some(if ended_after_entry_data { deficit } else { 0 });
        }
        let left = self.padding.as_mut().expect("set above");
        let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
        buf[..n].fill(0);
        *left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], entry_data_end: Option<u64>) -> Vec<u8> {
        let (mut reader, end) = BlockPadded::new(input);
        if let Some(offset) = entry_data_end {
            end.set(offset);
        }
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_stream_ending_with_an_entrys_data_is_padded_to_the_block_boundary() {
        let out = read_all(&[7u8; 700], Some(700));
        assert_eq!(out.len(), 1024);
        assert!(out[..700].iter().all(|b| *b == 7));
        assert!(out[700..].iter().all(|b| *b == 0));
    }

    #[test]
    fn a_stream_ending_inside_an_entrys_data_is_left_short() {
        assert_eq!(read_all(&[7u8; 700], Some(1000)).len(), 700);
        assert_eq!(read_all(&[7u8; 700], None).len(), 700);
    }

    #[test]
    fn a_stream_ending_on_a_boundary_is_unchanged() {
        assert_eq!(read_all(&[1u8; 1024], Some(1024)).len(), 1024);
    }
}
