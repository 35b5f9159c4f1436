//! The container log file in the kubelet's CRI format.
//!
//! Every record is one line: `<RFC 3339 UTC timestamp, 9 fraction digits> <stdout|stderr>
//! <F|P> <content>\n`. A line of output ending in `\n` becomes an `F` (full) record whose
//! terminator is that `\n`. Output is held until its newline arrives, each stream on its own, up
//! to [`MAX_LOG_LINE`] bytes: a longer line is cut into `P` (partial) records of exactly that many
//! bytes, and its last piece, the one ending in `\n`, is `F`. A line of exactly `MAX_LOG_LINE`
//! bytes stays one `F` record.
//!
//! At the end of a stream, a last line without a newline is written as `F`, like containerd
//! does: nothing follows it, so it is complete, and kubelet shows it as a line of its own.
//!
//! Each record is written whole (one `write_all` of a prepared buffer), so a reader never sees a
//! torn record from this writer. The buffers are allocated once: memory does not grow with the
//! output.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest content of one record; longer lines are split into partial records.
pub(crate) const MAX_LOG_LINE: usize = 16 * 1024;

/// `2026-11-22T10:11:12.123456789Z`
const TIMESTAMP_LEN: usize = 30;

/// Timestamp, stream name (at most 6), tag, three spaces and the newline.
const MAX_RECORD_LEN: usize = TIMESTAMP_LEN + 6 + 1 + 3 + 1 + MAX_LOG_LINE;

/// One of the container's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// Its name in a log record.
    fn name(self) -> &'static [u8] {
        match self {
            Stream::Stdout => b"stdout",
            Stream::Stderr => b"stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Full,
    Partial,
}

impl Tag {
    fn byte(self) -> u8 {
        match self {
            Tag::Full => b'F',
            Tag::Partial => b'P',
        }
    }
}

/// Turns the container's output into CRI log records written to `W`.
pub(crate) struct LogWriter<W: Write> {
    out: W,
    /// The started, unterminated line of each stream (indexed by [`Stream::index`]).
    pending: [Vec<u8>; 2],
    /// The record being written.
    record: Vec<u8>,
}

impl<W: Write> LogWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        LogWriter {
            out,
            pending: [
                Vec::with_capacity(MAX_LOG_LINE),
                Vec::with_capacity(MAX_LOG_LINE),
            ],
            record: Vec::with_capacity(MAX_RECORD_LEN),
        }
    }

    /// Takes `data` read from `stream` at `now` and writes the records it completes.
    ///
    /// All of `data` is consumed even when a write fails: that record is lost, the first error is
    /// returned, and later records are still attempted (the container's output must keep
    /// flowing).
    pub(crate) fn write(
        &mut self,
        stream: Stream,
        mut data: &[u8],
        now: SystemTime,
    ) -> io::Result<()> {
        let mut result = Ok(());
        let pending = &mut self.pending[stream.index()];
        while !data.is_empty() {
            if pending.len() == MAX_LOG_LINE {
                // A full buffer is a whole line if the next byte ends it, else the first piece
                // of a longer one.
                let tag = if data[0] == b'\n' {
                    data = &data[1..];
                    Tag::Full
                } else {
                    Tag::Partial
                };
                let written = write_record(
                    &mut self.out,
                    &mut self.record,
                    now,
                    stream,
                    tag,
                    &[pending],
                );
                result = result.and(written);
                pending.clear();
                continue;
            }
            let room = MAX_LOG_LINE - pending.len();
            let window = &data[..room.min(data.len())];
            match window.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    let parts: [&[u8]; 2] = [pending, &window[..end]];
                    let written = write_record(
                        &mut self.out,
                        &mut self.record,
                        now,
                        stream,
                        Tag::Full,
                        &parts,
                    );
                    result = result.and(written);
                    pending.clear();
                    data = &data[end + 1..];
                }
                None => {
                    pending.extend_from_slice(window);
                    data = &data[window.len()..];
                }
            }
        }
        result
    }

    /// The end of `stream`: its unterminated last line, if any, becomes an `F` record.
    pub(crate) fn finish(&mut self, stream: Stream, now: SystemTime) -> io::Result<()> {
        let pending = &mut self.pending[stream.index()];
        if pending.is_empty() {
            return Ok(());
        }
        let written = write_record(
            &mut self.out,
            &mut self.record,
            now,
            stream,
            Tag::Full,
            &[pending],
        );
        pending.clear();
        written
    }

    /// Writes the next records to `out` instead (a reopened log file); returns the old output.
    /// Unterminated lines stay pending and go to the new output when they end.
    pub(crate) fn replace_output(&mut self, out: W) -> W {
        std::mem::replace(&mut self.out, out)
    }

    #[cfg(test)]
    fn output(&self) -> &W {
        &self.out
    }
}

/// Builds one record from `content` (the concatenation of its parts) in `record` and writes it.
fn write_record(
    out: &mut impl Write,
    record: &mut Vec<u8>,
    now: SystemTime,
    stream: Stream,
    tag: Tag,
    content: &[&[u8]],
) -> io::Result<()> {
    record.clear();
    push_timestamp(record, now);
    record.push(b' ');
    record.extend_from_slice(stream.name());
    record.push(b' ');
    record.push(tag.byte());
    record.push(b' ');
    for part in content {
        record.extend_from_slice(part);
    }
    record.push(b'\n');
    out.write_all(record)
}

/// Appends `now` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (UTC; times before 1970 as the epoch).
fn push_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let second_of_day = seconds % 86_400;
    push_digits(out, year, 4);
    out.push(b'-');
    push_digits(out, month, 2);
    out.push(b'-');
    push_digits(out, day, 2);
    out.push(b'T');
    push_digits(out, second_of_day / 3600, 2);
    out.push(b':');
    push_digits(out, second_of_day / 60 % 60, 2);
    out.push(b':');
    push_digits(out, second_of_day % 60, 2);
    out.push(b'.');
    push_digits(out, u64::from(since_epoch.subsec_nanos()), 9);
    out.push(b'Z');
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut Vec<u8>, value: u64, width: u32) {
    for position in (0..width).rev() {
        let digit = (value / 10u64.pow(position)) % 10;
        out.push(b'0' + digit as u8);
    }
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 2026-11-22T10:11:12.123456789Z
    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_795_342_272, 123_456_789)
    }

    const STAMP: &str = "2026-11-22T10:11:12.123456789Z";

    fn records(writer: &LogWriter<Vec<u8>>) -> Vec<String> {
        String::from_utf8(writer.output().clone())
            .unwrap()
            .lines()
            .map(|line| {
                let rest = line.strip_prefix(STAMP).unwrap();
                rest.strip_prefix(' ').unwrap().to_string()
            })
            .collect()
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_nine_fraction_digits() {
        let mut out = Vec::new();
        push_timestamp(&mut out, at());
        assert_eq!(out, STAMP.as_bytes());
        let mut out = Vec::new();
        push_timestamp(&mut out, UNIX_EPOCH + Duration::new(951_782_400, 5));
        assert_eq!(out, b"2000-02-29T00:00:00.000000005Z");
        let mut out = Vec::new();
        push_timestamp(&mut out, UNIX_EPOCH + Duration::new(4_107_542_399, 0));
        assert_eq!(out, b"2100-02-28T23:59:59.000000000Z");
        let mut out = Vec::new();
        push_timestamp(&mut out, UNIX_EPOCH - Duration::from_secs(1));
        assert_eq!(out, b"1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn full_lines_become_f_records_per_stream() {
        let mut writer = LogWriter::new(Vec::new());
        writer.write(Stream::Stdout, b"one\ntwo\n", at()).unwrap();
        writer.write(Stream::Stderr, b"oops\n", at()).unwrap();
        writer.write(Stream::Stdout, b"\n", at()).unwrap();
        assert_eq!(
            records(&writer),
            ["stdout F one", "stdout F two", "stderr F oops", "stdout F "]
        );
    }

    #[test]
    fn a_line_split_across_reads_is_joined() {
        let mut writer = LogWriter::new(Vec::new());
        writer.write(Stream::Stdout, b"hel", at()).unwrap();
        writer.write(Stream::Stderr, b"e", at()).unwrap();
        writer.write(Stream::Stdout, b"lo wor", at()).unwrap();
        assert!(records(&writer).is_empty());
        writer.write(Stream::Stdout, b"ld\nnext", at()).unwrap();
        writer.write(Stream::Stderr, b"rr\n", at()).unwrap();
        assert_eq!(records(&writer), ["stdout F hello world", "stderr F err"]);
    }

    #[test]
    fn long_lines_are_split_into_partial_records_of_16_kib() {
        let mut writer = LogWriter::new(Vec::new());
        let line = vec![b'a'; 40 * 1024];
        // In odd-sized reads, to cross the record boundaries inside reads.
        for chunk in line.chunks(7000) {
            writer.write(Stream::Stdout, chunk, at()).unwrap();
        }
        writer.write(Stream::Stdout, b"\n", at()).unwrap();
        let records = records(&writer);
        let expected: Vec<String> = [("P", 16384), ("P", 16384), ("F", 8192)]
            .iter()
            .map(|(tag, len)| format!("stdout {tag} {}", "a".repeat(*len)))
            .collect();
        assert_eq!(records, expected);
    }

    #[test]
    fn a_line_of_exactly_16_kib_is_one_full_record() {
        let mut writer = LogWriter::new(Vec::new());
        let mut data = vec![b'x'; MAX_LOG_LINE];
        writer.write(Stream::Stderr, &data, at()).unwrap();
        assert!(records(&writer).is_empty());
        writer.write(Stream::Stderr, b"\ny\n", at()).unwrap();
        data.push(b'\n');
        let expected = format!("stderr F {}", "x".repeat(MAX_LOG_LINE));
        assert_eq!(records(&writer), [expected, "stderr F y".to_string()]);
    }

    #[test]
    fn a_line_one_byte_over_16_kib_is_a_partial_and_a_full_record() {
        let mut writer = LogWriter::new(Vec::new());
        let mut data = vec![b'x'; MAX_LOG_LINE + 1];
        data.push(b'\n');
        writer.write(Stream::Stdout, &data, at()).unwrap();
        let expected = [
            format!("stdout P {}", "x".repeat(MAX_LOG_LINE)),
            "stdout F x".to_string(),
        ];
        assert_eq!(records(&writer), expected);
    }

    #[test]
    fn the_unterminated_end_of_a_stream_is_a_full_record() {
        let mut writer = LogWriter::new(Vec::new());
        writer.write(Stream::Stdout, b"done\nbye", at()).unwrap();
        writer.finish(Stream::Stderr, at()).unwrap();
        writer.finish(Stream::Stdout, at()).unwrap();
        writer.finish(Stream::Stdout, at()).unwrap();
        assert_eq!(records(&writer), ["stdout F done", "stdout F bye"]);
    }

    #[test]
    fn replacing_the_output_keeps_the_pending_line_for_the_new_one() {
        let mut writer = LogWriter::new(Vec::new());
        writer.write(Stream::Stdout, b"a\nhalf", at()).unwrap();
        let old = writer.replace_output(Vec::new());
        writer.write(Stream::Stdout, b" line\n", at()).unwrap();
        assert_eq!(
            String::from_utf8(old).unwrap(),
            format!("{STAMP} stdout F a\n")
        );
        assert_eq!(records(&writer), ["stdout F half line"]);
    }

    /// Fails every other write.
    struct Flaky {
        calls: usize,
        written: Vec<u8>,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 2 == 1 {
                return Err(io::Error::other("disk full"));
            }
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_loses_that_record_only() {
        let mut writer = LogWriter::new(Flaky {
            calls: 0,
            written: Vec::new(),
        });
        let err = writer
            .write(Stream::Stdout, b"lost\nkept\n", at())
            .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        let text = String::from_utf8(writer.output().written.clone()).unwrap();
        assert_eq!(text, format!("{STAMP} stdout F kept\n"));
    }

    #[test]
    fn buffers_do_not_grow_with_output() {
        let mut writer = LogWriter::new(io::sink());
        let capacities = |w: &LogWriter<io::Sink>| {
            (
                w.pending[0].capacity(),
                w.pending[1].capacity(),
                w.record.capacity(),
            )
        };
        let before = capacities(&writer);
        let data = vec![b'z'; 100 * 1024];
        for _ in 0..10 {
            writer.write(Stream::Stdout, &data, at()).unwrap();
            writer.write(Stream::Stderr, b"short\n", at()).unwrap();
        }
        assert_eq!(capacities(&writer), before);
    }
}
