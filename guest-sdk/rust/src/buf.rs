//! Buffers for host functions with output, and decoding of their results.

use crate::Error;

/// The stack buffer tried first: most names, values and lines fit.
const FIRST: usize = 256;

/// Calls `call` with a buffer until the result fits, following the ABI's
/// convention: a function with output returns the full length of its
/// result and writes it only if it fits, so a larger result is fetched
/// again with a buffer of that size. Negative results are errors.
pub(crate) fn read_growing(mut call: impl FnMut(&mut [u8]) -> i32) -> Result<Vec<u8>, Error> {
    let mut first = [0u8; FIRST];
    let n = call(&mut first);
    if n < 0 {
        return Err(Error::from_code(n));
    }
    let mut n = n as usize;
    if n <= FIRST {
        return Ok(first[..n].to_vec());
    }
    // The result may change between calls (a variable set meanwhile):
    // retry until it fits.
    loop {
        let mut buf = vec![0u8; n];
        let m = call(&mut buf);
        if m < 0 {
            return Err(Error::from_code(m));
        }
        let m = m as usize;
        if m <= buf.len() {
            buf.truncate(m);
            return Ok(buf);
        }
        n = m;
    }
}

/// Like [`read_growing`], decoded as UTF-8 (invalid sequences replaced).
pub(crate) fn read_string(call: impl FnMut(&mut [u8]) -> i32) -> Result<String, Error> {
    read_growing(call).map(into_string)
}

/// Bytes from the host as a String, replacing invalid UTF-8.
pub(crate) fn into_string(b: Vec<u8>) -> String {
    match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Splits a NUL-separated list of names. An empty list has no names;
/// empty names inside the list are kept.
pub(crate) fn split_list(b: &[u8]) -> Vec<String> {
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0)
        .map(|n| into_string(n.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split() {
        assert_eq!(split_list(b""), Vec::<String>::new());
        assert_eq!(split_list(b"a"), vec!["a"]);
        assert_eq!(split_list(b"a\0bc\0d/e"), vec!["a", "bc", "d/e"]);
        assert_eq!(split_list(b"a\0\0b"), vec!["a", "", "b"]);
        assert_eq!(split_list(b"\xff\0x"), vec!["\u{fffd}", "x"]);
    }

    #[test]
    fn growing() {
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut calls = 0;
        let got = read_growing(|buf| {
            calls += 1;
            if data.len() <= buf.len() {
                buf[..data.len()].copy_from_slice(&data);
            }
            data.len() as i32
        })
        .unwrap();
        assert_eq!(got, data);
        assert_eq!(calls, 2);

        let mut calls = 0;
        let got = read_growing(|buf| {
            calls += 1;
            buf[..2].copy_from_slice(b"hi");
            2
        })
        .unwrap();
        assert_eq!(got, b"hi");
        assert_eq!(calls, 1);

        assert_eq!(read_growing(|_| -3), Err(Error::NotFound));
        assert_eq!(read_growing(|_| 0).unwrap(), b"");
    }

    #[test]
    fn growing_retries_when_the_result_grows() {
        let mut len = 300usize;
        let got = read_growing(|buf| {
            let n = len;
            len += 100; // grows between calls, until it fits
            if n <= buf.len() {
                for b in &mut buf[..n] {
                    *b = b'x';
                }
            }
            if n >= 500 {
                len = 500;
            }
            n as i32
        })
        .unwrap();
        assert_eq!(got.len(), 500);
    }
}
