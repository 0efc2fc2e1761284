//! PostgreSQL's text output of a value, made from its binary form. Neon's
//! proxy asks PostgreSQL for text (its own fork of tokio-postgres does);
//! tokio-postgres always asks for binary, so this module writes what
//! PostgreSQL would have written for the sessions this proxy opens
//! (`DateStyle` ISO, `IntervalStyle` postgres, `TimeZone` UTC, `bytea_output`
//! hex, `extra_float_digits` 1; see [`SESSION_OPTIONS`]). The suite checks
//! it against PostgreSQL's own `::text` of the same values.
//!
//! With `Neon-Raw-Text-Output: true` every value is that text; otherwise it
//! becomes JSON the way Neon's proxy converts it: booleans, 2- and 4-byte
//! integers and finite floats as JSON scalars, `json`/`jsonb` as JSON,
//! arrays as JSON arrays of their converted elements, all else the text.

use std::error::Error;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use postgres_protocol::types as pg;
use serde_json::Value;
use tokio_postgres::types::{Kind, Type};

type BoxError = Box<dyn Error + Sync + Send>;

/// The session settings the text output below assumes; the proxy starts
/// every upstream session with them (callers cannot `SET` them).
pub const SESSION_OPTIONS: &str = "-c DateStyle=ISO,MDY -c IntervalStyle=postgres -c TimeZone=UTC \
     -c bytea_output=hex -c extra_float_digits=1";

/// A column value as the wire format carries it.
pub fn value(ty: &Type, raw: Option<&[u8]>, raw_output: bool) -> Result<Value, BoxError> {
    let Some(raw) = raw else {
        return Ok(Value::Null);
    };
    if raw_output {
        return text(ty, raw).map(Value::String);
    }
    match ty.kind() {
        Kind::Array(element) => array_json(element, raw),
        Kind::Domain(base) => value(base, Some(raw), false),
        _ => Ok(neon_json(ty, text(ty, raw)?)),
    }
}

/// Neon's conversion of a value's text to JSON.
fn neon_json(ty: &Type, text: String) -> Value {
    match *ty {
        Type::BOOL => Value::Bool(text == "t"),
        Type::INT2 | Type::INT4 => text.parse::<i32>().map_or(Value::String(text), Value::from),
        // NaN and the infinities stay text: JSON has no such numbers.
        Type::FLOAT4 | Type::FLOAT8 => match text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            Some(number) => Value::Number(number),
            None => Value::String(text),
        },
        Type::JSON | Type::JSONB => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        _ => Value::String(text),
    }
}

/// The text PostgreSQL writes for a non-null value of type `ty`.
pub fn text(ty: &Type, raw: &[u8]) -> Result<String, BoxError> {
    match ty.kind() {
        Kind::Array(element) => return array_text(element, raw),
        Kind::Domain(base) => return text(base, raw),
        Kind::Enum(_) => return utf8(raw),
        _ => {}
    }
    Ok(match *ty {
        Type::BOOL => if pg::bool_from_sql(raw)? { "t" } else { "f" }.to_owned(),
        Type::INT2 => pg::int2_from_sql(raw)?.to_string(),
        Type::INT4 => pg::int4_from_sql(raw)?.to_string(),
        Type::INT8 => pg::int8_from_sql(raw)?.to_string(),
        Type::OID | Type::XID | Type::CID => pg::oid_from_sql(raw)?.to_string(),
        Type::FLOAT4 => float4(pg::float4_from_sql(raw)?),
        Type::FLOAT8 => float8(pg::float8_from_sql(raw)?),
        Type::NUMERIC => numeric(raw)?,
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::UNKNOWN
        | Type::JSON
        | Type::XML => utf8(raw)?,
        Type::JSONB => match raw.split_first() {
            Some((1, json)) => utf8(json)?,
            _ => return Err("unknown jsonb version".into()),
        },
        Type::CHAR => char_text(pg::char_from_sql(raw)? as u8),
        Type::BYTEA => format!("\\x{}", hex::encode(raw)),
        Type::UUID => uuid::Uuid::from_bytes(pg::uuid_from_sql(raw)?).to_string(),
        Type::DATE => date(pg::date_from_sql(raw)?),
        Type::TIME => clock(pg::time_from_sql(raw)?),
        Type::TIMETZ => time_tz(raw)?,
        Type::TIMESTAMP => timestamp(pg::timestamp_from_sql(raw)?, false),
        Type::TIMESTAMPTZ => timestamp(pg::timestamp_from_sql(raw)?, true),
        Type::INTERVAL => interval(raw)?,
        Type::INET | Type::CIDR => inet(raw, *ty == Type::CIDR)?,
        Type::MACADDR => mac(raw)?,
        Type::VOID => String::new(),
        _ if ty.name() == "citext" => utf8(raw)?,
        _ => {
            return Err(
                format!("values of type {ty} are not supported; cast it, e.g. to text").into(),
            );
        }
    })
}

fn utf8(raw: &[u8]) -> Result<String, BoxError> {
    Ok(std::str::from_utf8(raw)?.to_owned())
}

/// `"char"`: the byte itself, or a backslash and three octal digits for a
/// byte outside ASCII (`charout`).
fn char_text(byte: u8) -> String {
    match byte {
        0 => String::new(),
        1..=127 => char::from(byte).to_string(),
        _ => format!("\\{byte:03o}"),
    }
}

/// `float8out`: the shortest text that reads back as the same number,
/// fixed point for exponents from -4 to 14, else `1.5e+21`.
fn float8(x: f64) -> String {
    if !x.is_finite() {
        return non_finite(x.is_nan(), x.is_sign_negative());
    }
    let bits = x.abs().to_bits();
    let binary = Binary::new((bits >> 52) as i32, bits & ((1 << 52) - 1), 52, 1_075);
    let ryu = decimal(ryu::Buffer::new().format_finite(x.abs()));
    let digits = binary.strictly_inside(ryu, 17, |p| {
        let text = format!("{:.*e}", p - 1, x.abs());
        (text.parse::<f64>().ok() == Some(x.abs())).then(|| decimal(&text))
    });
    layout(x.is_sign_negative(), digits, 15)
}

/// `float4out`: as [`float8`], fixed point for exponents from -4 to 5.
fn float4(x: f32) -> String {
    if !x.is_finite() {
        return non_finite(x.is_nan(), x.is_sign_negative());
    }
    let bits = x.abs().to_bits();
    let binary = Binary::new(
        (bits >> 23) as i32,
        u64::from(bits & ((1 << 23) - 1)),
        23,
        150,
    );
    let ryu = decimal(ryu::Buffer::new().format_finite(x.abs()));
    let digits = binary.strictly_inside(ryu, 9, |p| {
        let text = format!("{:.*e}", p - 1, x.abs());
        (text.parse::<f32>().ok() == Some(x.abs())).then(|| decimal(&text))
    });
    layout(x.is_sign_negative(), digits, 6)
}

fn non_finite(nan: bool, negative: bool) -> String {
    match (nan, negative) {
        (true, _) => "NaN",
        (false, true) => "-Infinity",
        (false, false) => "Infinity",
    }
    .into()
}

/// A decimal: significant digits (no leading or trailing zeros; empty for
/// zero) and the exponent of the first, `d.ddd × 10^exponent`.
struct Decimal {
    digits: String,
    exponent: i32,
}

/// The decimal of a float's text (`1.5e-7`, `0.001`, `123.0`, `1.25e2`).
fn decimal(text: &str) -> Decimal {
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{whole}{fraction}");
    let leading = all.len() - all.trim_start_matches('0').len();
    Decimal {
        digits: all.trim_matches('0').to_owned(),
        exponent: whole.len() as i32 - 1 - leading as i32 + exponent,
    }
}

/// A positive float as `mantissa × 2^exponent`, for the bounds of the
/// decimals that read back as it.
struct Binary {
    mantissa: u64,
    exponent: i32,
    /// The first float of its binade: the float below is closer.
    binade_start: bool,
}

impl Binary {
    fn new(biased: i32, fraction: u64, fraction_bits: u32, bias: i32) -> Self {
        if biased == 0 {
            Binary {
                mantissa: fraction,
                exponent: 1 - bias,
                binade_start: false,
            }
        } else {
            Binary {
                mantissa: fraction | (1 << fraction_bits),
                exponent: biased - bias,
                binade_start: fraction == 0 && biased > 1,
            }
        }
    }

    /// PostgreSQL's Ryu does not accept the bounds of the interval (the
    /// points halfway to the neighbouring floats), which Ryu proper does
    /// for an even mantissa. When `shortest` is on a bound, the answer is
    /// the first correctly rounded length (`at(p)`) strictly inside.
    fn strictly_inside(
        &self,
        shortest: Decimal,
        max_digits: usize,
        at: impl Fn(usize) -> Option<Decimal>,
    ) -> Decimal {
        if !self.on_bound(&shortest) {
            return shortest;
        }
        (shortest.digits.len() + 1..=max_digits)
            .filter_map(at)
            .find(|candidate| !self.on_bound(candidate))
            .unwrap_or(shortest)
    }

    fn on_bound(&self, decimal: &Decimal) -> bool {
        let (m, e) = (self.mantissa, self.exponent);
        if m == 0 {
            return false;
        }
        let lower = if self.binade_start {
            (4 * m - 1, e - 2)
        } else {
            (2 * m - 1, e - 1)
        };
        [(2 * m + 1, e - 1), lower]
            .into_iter()
            .any(|(odd, power)| equals(decimal, odd, power))
    }
}

/// Whether `decimal` is exactly `odd × 2^power`: with the decimal as
/// `D × 10^k` and `D = D' × 2^a` (`D'` odd), exactly when `a + k = power`
/// and `D' × 5^k = odd` (or `D' = odd × 5^-k`).
fn equals(decimal: &Decimal, odd: u64, power: i32) -> bool {
    let Ok(d) = decimal.digits.parse::<u64>() else {
        return false;
    };
    if d == 0 {
        return false;
    }
    let k = decimal.exponent - (decimal.digits.len() as i32 - 1);
    let a = d.trailing_zeros() as i32;
    if a + k != power {
        return false;
    }
    let d_odd = u128::from(d >> a);
    let five = |n: i32| 5u128.checked_pow(n.unsigned_abs());
    if k >= 0 {
        five(k).and_then(|f| d_odd.checked_mul(f)) == Some(u128::from(odd))
    } else {
        five(k).and_then(|f| f.checked_mul(u128::from(odd))) == Some(d_odd)
    }
}

/// Writes a decimal as PostgreSQL does: fixed point for exponents in
/// `-4..fixed_below`, else `d.ddde±XX`.
fn layout(negative: bool, decimal: Decimal, fixed_below: i32) -> String {
    let sign = if negative { "-" } else { "" };
    let Decimal { digits, exponent } = decimal;
    if digits.is_empty() {
        return format!("{sign}0");
    }
    if !(-4..fixed_below).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!(
            "{sign}{first}{point}{rest}e{exponent_sign}{:02}",
            exponent.abs()
        );
    }
    let point = exponent + 1;
    if point <= 0 {
        format!(
            "{sign}0.{}{digits}",
            "0".repeat(point.unsigned_abs() as usize)
        )
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        format!("{sign}{whole}.{fraction}")
    }
}

/// `numeric_out` from the binary form: base-10000 digits with a weight,
/// shown with exactly `dscale` fractional digits.
fn numeric(raw: &[u8]) -> Result<String, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "numeric value is truncated".into())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| word(8 + 2 * i))
        .collect::<Result<Vec<_>, _>>()?;
    let digit = |position: i32| -> u16 {
        usize::try_from(position)
            .ok()
            .and_then(|p| digits.get(p).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        let _ = write!(out, "{}", digit(0));
        for position in 1..=weight {
            let _ = write!(out, "{:04}", digit(position));
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut position = weight + 1;
        while fraction.len() < dscale {
            let _ = write!(fraction, "{:04}", digit(position));
            position += 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

/// Days from 2000-01-01 to the Julian day number.
const POSTGRES_EPOCH_JDATE: i64 = 2_451_545;
const USECS_PER_DAY: i64 = 86_400_000_000;

/// `j2date`: the proleptic Gregorian year, month and day of Julian day `jd`
/// (year 0 is 1 BC).
fn j2date(jd: i64) -> (i64, u32, u32) {
    let mut julian = jd + 32_044;
    let mut quad = julian.div_euclid(146_097);
    let extra = (julian - quad * 146_097) * 4 + 3;
    julian += 60 + quad * 3 + extra / 146_097;
    quad = julian / 1_461;
    julian -= quad * 1_461;
    let mut y = julian * 4 / 1_461;
    julian = if y != 0 {
        (julian + 305) % 365
    } else {
        (julian + 306) % 366
    } + 123;
    y += quad * 4;
    let quad = julian * 2_141 / 65_536;
    let day = julian - 7_834 * quad / 256;
    let month = (quad + 10) % 12 + 1;
    (y - 4_800, month as u32, day as u32)
}

/// `YYYY-MM-DD` of Julian day `jd`, and whether it is BC.
fn ymd(jd: i64) -> (String, bool) {
    let (year, month, day) = j2date(jd);
    let bc = year <= 0;
    let shown = if bc { 1 - year } else { year };
    (format!("{shown:04}-{month:02}-{day:02}"), bc)
}

fn date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => {
            let (text, bc) = ymd(i64::from(days) + POSTGRES_EPOCH_JDATE);
            if bc { text + " BC" } else { text }
        }
    }
}

/// `HH:MM:SS` and the fractional seconds without trailing zeros; hours may
/// run past 24 (intervals).
fn clock(usecs: i64) -> String {
    let usecs = usecs.unsigned_abs();
    let (hours, rest) = (usecs / 3_600_000_000, usecs % 3_600_000_000);
    let (minutes, rest) = (rest / 60_000_000, rest % 60_000_000);
    let (seconds, fraction) = (rest / 1_000_000, rest % 1_000_000);
    let mut out = format!("{hours:02}:{minutes:02}:{seconds:02}");
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

/// `EncodeTimezone`: `+HH`, `+HH:MM` or `+HH:MM:SS` of an offset given in
/// seconds west of UTC, as PostgreSQL keeps it.
fn zone(seconds_west: i32) -> String {
    let sign = if seconds_west <= 0 { '+' } else { '-' };
    let east = seconds_west.unsigned_abs();
    let (hours, minutes, seconds) = (east / 3_600, east / 60 % 60, east % 60);
    match (minutes, seconds) {
        (_, s) if s != 0 => format!("{sign}{hours:02}:{minutes:02}:{s:02}"),
        (m, _) if m != 0 => format!("{sign}{hours:02}:{m:02}"),
        _ => format!("{sign}{hours:02}"),
    }
}

fn time_tz(raw: &[u8]) -> Result<String, BoxError> {
    let (time, offset) = match raw {
        [t @ .., a, b, c, d] if t.len() == 8 => {
            (pg::time_from_sql(t)?, i32::from_be_bytes([*a, *b, *c, *d]))
        }
        _ => return Err("timetz value is not 12 bytes".into()),
    };
    Ok(format!("{}{}", clock(time), zone(offset)))
}

/// `timestamp_out`/`timestamptz_out` (UTC) of microseconds from 2000-01-01.
fn timestamp(usecs: i64, with_zone: bool) -> String {
    match usecs {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    let days = usecs.div_euclid(USECS_PER_DAY);
    let time = usecs.rem_euclid(USECS_PER_DAY);
    let (date, bc) = ymd(days + POSTGRES_EPOCH_JDATE);
    let zone = if with_zone { "+00" } else { "" };
    let era = if bc { " BC" } else { "" };
    format!("{date} {}{zone}{era}", clock(time))
}

/// `interval_out` in the `postgres` style: `1 year 2 mons -3 days +04:05:06.5`.
fn interval(raw: &[u8]) -> Result<String, BoxError> {
    let [
        t0,
        t1,
        t2,
        t3,
        t4,
        t5,
        t6,
        t7,
        d0,
        d1,
        d2,
        d3,
        m0,
        m1,
        m2,
        m3,
    ] = *raw
    else {
        return Err("interval value is not 16 bytes".into());
    };
    let time = i64::from_be_bytes([t0, t1, t2, t3, t4, t5, t6, t7]);
    let days = i32::from_be_bytes([d0, d1, d2, d3]);
    let months = i32::from_be_bytes([m0, m1, m2, m3]);
    match (time, days, months) {
        (i64::MAX, i32::MAX, i32::MAX) => return Ok("infinity".into()),
        (i64::MIN, i32::MIN, i32::MIN) => return Ok("-infinity".into()),
        _ => {}
    }
    let mut out = String::new();
    // Each non-zero field marks whether the one after it is "before" (its
    // sign shown even when positive), as `AddPostgresIntPart` does.
    let mut before = false;
    for (value, unit) in [
        (i64::from(months / 12), "year"),
        (i64::from(months % 12), "mon"),
        (i64::from(days), "day"),
    ] {
        if value == 0 {
            continue;
        }
        let space = if out.is_empty() { "" } else { " " };
        let plus = if before && value > 0 { "+" } else { "" };
        let plural = if value == 1 { "" } else { "s" };
        let _ = write!(out, "{space}{plus}{value} {unit}{plural}");
        before = value < 0;
    }
    if out.is_empty() || time != 0 {
        let space = if out.is_empty() { "" } else { " " };
        let sign = if time < 0 {
            "-"
        } else if before {
            "+"
        } else {
            ""
        };
        let _ = write!(out, "{space}{sign}{}", clock(time));
    }
    Ok(out)
}

/// `inet_out`/`cidr_out`: the address, and `/bits` for a cidr or when the
/// mask is not the whole address.
fn inet(raw: &[u8], cidr: bool) -> Result<String, BoxError> {
    let value = pg::inet_from_sql(raw)?;
    let address = value.addr();
    let full = if address.is_ipv4() { 32 } else { 128 };
    let text = match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => ipv6(v6),
    };
    Ok(if cidr || value.netmask() != full {
        format!("{text}/{}", value.netmask())
    } else {
        text
    })
}

/// IPv6 as PostgreSQL writes it: the longest run of two or more zero
/// groups as `::`, and an embedded IPv4 address for `::ffff:a.b.c.d` and
/// `::a.b.c.d`.
fn ipv6(address: Ipv6Addr) -> String {
    let segments = address.segments();
    let embedded = segments[..5] == [0; 5]
        && (segments[5] == 0xffff || segments[5] == 0)
        && !(segments[5] == 0 && segments[6] == 0);
    if embedded {
        let [.., a, b, c, d] = address.octets();
        let prefix = if segments[5] == 0xffff {
            "::ffff:"
        } else {
            "::"
        };
        return format!("{prefix}{}", Ipv4Addr::new(a, b, c, d));
    }
    address.to_string()
}

fn mac(raw: &[u8]) -> Result<String, BoxError> {
    match raw {
        [a, b, c, d, e, f] => Ok(format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")),
        _ => Err("macaddr value is not 6 bytes".into()),
    }
}

/// An array's elements, each null or its binary form, and its dimensions
/// (length, lower bound).
struct Array<'a> {
    dimensions: Vec<(usize, i32)>,
    elements: Vec<Option<&'a [u8]>>,
}

fn array<'a>(element: &Type, raw: &'a [u8]) -> Result<Array<'a>, BoxError> {
    let parsed = pg::array_from_sql(raw)?;
    if parsed.element_type() != element.oid() {
        return Err("array element type does not match its column".into());
    }
    let dimensions = {
        use fallible_iterator::FallibleIterator as _;
        parsed
            .dimensions()
            .map(|d| Ok((usize::try_from(d.len).unwrap_or(0), d.lower_bound)))
            .collect::<Vec<_>>()?
    };
    let elements = {
        use fallible_iterator::FallibleIterator as _;
        parsed.values().collect::<Vec<_>>()?
    };
    Ok(Array {
        dimensions,
        elements,
    })
}

/// `array_out`: `{a,"b c",NULL}`, nested braces per dimension, and the
/// bounds first when any lower bound is not 1 (`[0:1]={1,2}`).
fn array_text(element: &Type, raw: &[u8]) -> Result<String, BoxError> {
    let array = array(element, raw)?;
    let mut out = String::new();
    if array.dimensions.iter().any(|&(_, lower)| lower != 1) {
        for &(len, lower) in &array.dimensions {
            let _ = write!(out, "[{lower}:{}]", i64::from(lower) + len as i64 - 1);
        }
        out.push('=');
    }
    let mut items = array.elements.iter();
    nest_text(&mut out, &array.dimensions, &mut items, element)?;
    Ok(out)
}

fn nest_text<'a>(
    out: &mut String,
    dimensions: &[(usize, i32)],
    items: &mut impl Iterator<Item = &'a Option<&'a [u8]>>,
    element: &Type,
) -> Result<(), BoxError> {
    out.push('{');
    let Some((&(len, _), inner)) = dimensions.split_first() else {
        out.push('}');
        return Ok(());
    };
    for i in 0..len {
        if i > 0 {
            out.push(',');
        }
        if inner.is_empty() {
            match items.next().copied().flatten() {
                None => out.push_str("NULL"),
                Some(raw) => quote_element(out, &text(element, raw)?),
            }
        } else {
            nest_text(out, inner, items, element)?;
        }
    }
    out.push('}');
    Ok(())
}

/// An element, double-quoted (with `"` and `\` escaped) when it is empty,
/// reads as NULL, or holds a brace, quote, backslash, comma or space.
fn quote_element(out: &mut String, text: &str) {
    let needs_quotes = text.is_empty()
        || text.eq_ignore_ascii_case("null")
        || text.chars().any(|c| {
            matches!(
                c,
                '{' | '}' | '"' | '\\' | ',' | ' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C'
            )
        });
    if needs_quotes {
        push_quoted(out, text);
    } else {
        out.push_str(text);
    }
}

/// `text` in double quotes, `"` and `\` escaped with a backslash: an array
/// element as PostgreSQL writes and reads it.
pub fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Neon's JSON of an array: nested arrays of its converted elements (the
/// bounds are not kept).
fn array_json(element: &Type, raw: &[u8]) -> Result<Value, BoxError> {
    let array = array(element, raw)?;
    let mut items = array.elements.iter();
    nest_json(&array.dimensions, &mut items, element)
}

fn nest_json<'a>(
    dimensions: &[(usize, i32)],
    items: &mut impl Iterator<Item = &'a Option<&'a [u8]>>,
    element: &Type,
) -> Result<Value, BoxError> {
    let Some((&(len, _), inner)) = dimensions.split_first() else {
        return Ok(Value::Array(Vec::new()));
    };
    (0..len)
        .map(|_| {
            if inner.is_empty() {
                value(element, items.next().copied().flatten(), false)
            } else {
                nest_json(inner, items, element)
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_shortest_and_switch_to_exponents_like_postgres() {
        for (x, text) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1e14, "100000000000000"),
            (1e15, "1e+15"),
            (1.5e21, "1.5e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-300, "-2.5e-300"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(float8(x), text, "{x}");
        }
        assert_eq!(float4(100_000.0), "100000");
        assert_eq!(float4(1_000_000.0), "1e+06");
        assert_eq!(float4(0.1), "0.1");
        // A tie between two 17-digit texts: Ryu's (and PostgreSQL's) even one.
        assert_eq!(float8(215_492_859_907_334.62), "215492859907334.62");
        // Halfway to the next float: Ryu would stop at 16 digits, PostgreSQL
        // goes on to one strictly inside.
        assert_eq!(float8(31_722_300_588_172_752.0), "3.1722300588172752e+16");
    }

    #[test]
    fn dates_cover_bc_and_far_years() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(9_556), "2026-03-01");
        assert_eq!(date(-730_119), "0001-01-01");
        assert_eq!(date(-730_120), "0001-12-31 BC");
        assert_eq!(date(2_921_940), "10000-01-01");
        assert_eq!(date(i32::MAX), "infinity");
    }

    #[test]
    fn timestamps_and_times() {
        assert_eq!(timestamp(0, true), "2000-01-01 00:00:00+00");
        assert_eq!(timestamp(-1, false), "1999-12-31 23:59:59.999999");
        assert_eq!(timestamp(1_500_000, true), "2000-01-01 00:00:01.5+00");
        assert_eq!(clock(86_400_000_000), "24:00:00");
        assert_eq!(zone(-19_800), "+05:30");
        assert_eq!(zone(3_600), "-01");
        assert_eq!(zone(0), "+00");
    }

    #[test]
    fn intervals_in_the_postgres_style() {
        let raw = |time: i64, days: i32, months: i32| {
            let mut raw = time.to_be_bytes().to_vec();
            raw.extend(days.to_be_bytes());
            raw.extend(months.to_be_bytes());
            interval(&raw).expect("an interval")
        };
        assert_eq!(raw(0, 0, 0), "00:00:00");
        assert_eq!(raw(0, 3, 14), "1 year 2 mons 3 days");
        assert_eq!(raw(14_706_789_000, 1, 1), "1 mon 1 day 04:05:06.789");
        assert_eq!(raw(-3_600_000_000, 0, 0), "-01:00:00");
        assert_eq!(raw(3_600_000_000, -1, 0), "-1 days +01:00:00");
        assert_eq!(raw(0, 2, -1), "-1 mons +2 days");
        assert_eq!(raw(360_000_000_000, 0, 0), "100:00:00");
    }

    #[test]
    fn numerics_keep_their_scale() {
        let raw = |weight: i16, sign: u16, dscale: u16, digits: &[u16]| {
            let mut raw = Vec::new();
            for word in [digits.len() as u16, weight as u16, sign, dscale] {
                raw.extend(word.to_be_bytes());
            }
            for d in digits {
                raw.extend(d.to_be_bytes());
            }
            numeric(&raw).expect("a numeric")
        };
        assert_eq!(raw(0, 0, 2, &[12, 5000]), "12.50");
        assert_eq!(raw(1, 0x4000, 0, &[1, 2]), "-10002");
        assert_eq!(raw(-1, 0, 5, &[1234]), "0.12340");
        assert_eq!(raw(0, 0, 0, &[]), "0");
        assert_eq!(raw(2, 0, 0, &[9]), "900000000");
        assert_eq!(raw(0, 0xC000, 0, &[]), "NaN");
    }

    #[test]
    fn array_elements_are_quoted_when_they_must_be() {
        let mut out = String::new();
        for element in [
            "plain",
            "",
            "NULL",
            "a,b",
            "say \"hi\"",
            "back\\slash",
            "two words",
            "{x}",
        ] {
            quote_element(&mut out, element);
            out.push('|');
        }
        assert_eq!(
            out,
            r#"plain|""|"NULL"|"a,b"|"say \"hi\""|"back\\slash"|"two words"|"{x}"|"#
        );
    }

    #[test]
    fn ipv6_like_postgres() {
        let v6 = |s: &str| ipv6(s.parse().expect("an address"));
        assert_eq!(v6("2001:db8::1"), "2001:db8::1");
        assert_eq!(v6("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(v6("::1"), "::1");
        assert_eq!(v6("::"), "::");
    }
}
