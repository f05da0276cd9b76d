//! Timestamps as SentinelOne wants them: RFC 3339, UTC, milliseconds, `Z`.

/// Years SentinelOne's format can hold (four digits).
const MIN_MS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00Z
const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/// Writes `2024-01-15T10:30:45.123Z` for `ms` since the epoch; None if the year has not 4 digits.
pub fn format_utc_millis(ms: i64) -> Option<[u8; 24]> {
    if !(MIN_MS..=MAX_MS).contains(&ms) {
        return None;
    }
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (hh, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (mm, rest) = (rest / 60_000, rest % 60_000);
    let (ss, milli) = (rest / 1000, rest % 1000);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    put(&mut out[0..4], y as u32);
    put(&mut out[5..7], m);
    put(&mut out[8..10], d);
    put(&mut out[11..13], hh as u32);
    put(&mut out[14..16], mm as u32);
    put(&mut out[17..19], ss as u32);
    put(&mut out[20..23], milli as u32);
    Some(out)
}

fn put(dst: &mut [u8], mut n: u32) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, SecondsFormat};

    fn fmt(ms: i64) -> String {
        String::from_utf8(format_utc_millis(ms).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn matches_chrono_across_the_calendar() {
        let mut ms = MIN_MS;
        // Steps that are not a whole number of days, so every field varies.
        while ms < MAX_MS {
            let expected = DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(fmt(ms), expected, "ms = {ms}");
            ms += 9_876_543_210_123;
        }
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(fmt(1_705_314_645_123), "2024-01-15T10:30:45.123Z");
        assert_eq!(fmt(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(fmt(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn rejects_years_without_four_digits() {
        assert!(format_utc_millis(MAX_MS + 1).is_none());
        assert!(format_utc_millis(MIN_MS - 1).is_none());
    }
}
