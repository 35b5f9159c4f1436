//! A cap on the bytes the tar crate reads while it parses the headers of one entry.
//!
//! The tar crate reads GNU long names and PAX extension records whole into memory, with no limit
//! of its own. The unpacker arms this budget around each `Entries::next()` call (and drains each
//! entry's data itself before the next call), so what the tar crate reads there is only headers,
//! padding and extension records: a hostile archive declaring a huge PAX record gets an error
//! instead of an allocation.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The handle the unpacker keeps to arm and disarm the budget of its [`BudgetedReader`].
pub(super) struct HeaderBudget {
    remaining: Rc<Cell<Option<u64>>>,
    limit: u64,
}

/// The archive reader, counting down the budget while it is armed.
pub(super) struct BudgetedReader<R> {
    inner: R,
    remaining: Rc<Cell<Option<u64>>>,
    limit: u64,
}

impl HeaderBudget {
    /// Wraps `reader`; the budget starts disarmed.
    pub(super) fn wrap<R: Read>(reader: R, limit: u64) -> (HeaderBudget, BudgetedReader<R>) {
        let remaining = Rc::new(Cell::new(None));
        let reader = BudgetedReader {
            inner: reader,
            remaining: Rc::clone(&remaining),
            limit,
        };
        (HeaderBudget { remaining, limit }, reader)
    }

    /// From now on at most `limit` bytes may be read.
    pub(super) fn arm(&self) {
        self.remaining.set(Some(self.limit));
    }

    /// Reads are unlimited again (entry data is streamed, never buffered whole).
    pub(super) fn disarm(&self) {
        self.remaining.set(None);
    }
}

impl<R: Read> Read for BudgetedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(remaining) = self.remaining.get() else {
            return self.inner.read(buf);
        };
        if remaining == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "tar headers and extension records of one entry exceed {} bytes",
                    self.limit
                ),
            ));
        }
        let allowed = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..allowed])?;
        self.remaining.set(Some(remaining - read as u64));
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armed_budget_refuses_reads_past_the_limit_and_disarmed_allows_them() {
        let data = [7u8; 100];
        let (budget, mut reader) = HeaderBudget::wrap(&data[..], 10);
        let mut buf = [0u8; 64];
        budget.arm();
        assert_eq!(reader.read(&mut buf).unwrap(), 10);
        assert_eq!(
            reader.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        budget.disarm();
        assert_eq!(reader.read(&mut buf).unwrap(), 64);
    }
}
