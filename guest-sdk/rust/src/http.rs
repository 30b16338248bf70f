//! HTTP through the host, to the hosts the handler's manifest allows.
//!
//! A handler has no sockets. [`Request::send`] hands the request to the
//! host (`http_request`), which checks its URL, and every redirect's,
//! against the manifest's `[http] allow` list, performs it and returns the
//! response. Anything not allowed is [`Error::Denied`]; a request cut
//! short because the job was cancelled is [`Error::Canceled`]; network
//! failures are [`Error::Io`] (the job log says why).
//!
//! ```no_run
//! use wasmrunner::http::Request;
//!
//! let resp = Request::get("https://lab.example.com/api/boards")
//!     .header("Accept", "application/json")
//!     .send()?;
//! if resp.status != 200 {
//!     wasmrunner::outputln!("lab answered {}: {}", resp.status, resp.text());
//! }
//! # Ok::<(), wasmrunner::Error>(())
//! ```

use crate::buf::read_growing;
use crate::{sys, Error};

/// The first response buffer; larger responses are fetched again with
/// `http_response` into a buffer of their size.
const FIRST_RESPONSE: usize = 64 << 10;

/// An HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The method: `GET`, `POST`...
    pub method: String,
    /// The absolute `http` or `https` URL.
    pub url: String,
    /// Header fields, in order; repeated names add values. `Host` is not
    /// accepted: the host comes from the URL.
    pub headers: Vec<(String, String)>,
    /// The body (possibly empty).
    pub body: Vec<u8>,
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Header fields: names in canonical form (`Content-Type`) and sorted,
    /// one entry per value.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with a method and URL, no headers and no body.
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A GET request.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// A POST request with a body.
    ///
    /// ```
    /// use wasmrunner::http::Request;
    /// let req = Request::post("https://ci.example.com/hook", b"{}".to_vec())
    ///     .header("Content-Type", "application/json");
    /// assert_eq!(req.encode().unwrap(), b"POST https://ci.example.com/hook\r\nContent-Type: application/json\r\n\r\n{}");
    /// ```
    pub fn post(url: &str, body: Vec<u8>) -> Request {
        Request {
            body,
            ..Request::new("POST", url)
        }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// The request in the ABI's byte format: `METHOD URL\r\n`, then
    /// `Name: value\r\n` per header, an empty line, then the body.
    /// [`Error::Invalid`] if the method, URL or a header holds a line
    /// break, or a name is empty or holds a colon or a space.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let bad =
            |s: &str| s.is_empty() || s.contains(|c: char| c == '\r' || c == '\n' || c == ' ');
        if bad(&self.method) || bad(&self.url) {
            return Err(Error::Invalid);
        }
        let mut out =
            Vec::with_capacity(self.method.len() + self.url.len() + 4 + self.body.len() + 2);
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.url.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            if bad(name) || name.contains(':') || value.contains(|c: char| c == '\r' || c == '\n') {
                return Err(Error::Invalid);
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        Ok(out)
    }

    /// Performs the request: see [`send`].
    pub fn send(&self) -> Result<Response, Error> {
        send(self)
    }
}

/// Performs a request through the host and returns its response.
///
/// The response is read into a 64 KiB buffer first; a larger one is
/// fetched again, whole, with `http_response` (never by repeating the
/// request).
pub fn send(req: &Request) -> Result<Response, Error> {
    let raw = req.encode()?;
    let mut buf = vec![0u8; FIRST_RESPONSE];
    let n = sys::http_request(&raw, &mut buf);
    if n < 0 {
        return Err(Error::from_code(n));
    }
    let n = n as usize;
    if n <= buf.len() {
        buf.truncate(n);
        return Response::decode(&buf);
    }
    last_response()
}

/// The response of the last request again, until the next request
/// ([`Error::NotFound`] if it failed).
pub fn last_response() -> Result<Response, Error> {
    let raw = read_growing(sys::http_response)?;
    Response::decode(&raw)
}

impl Response {
    /// Decodes a response in the ABI's byte format: `STATUS\r\n`, then
    /// `Name: value\r\n` per header value, an empty line, then the body.
    ///
    /// ```
    /// use wasmrunner::http::Response;
    /// let r = Response::decode(b"404\r\nContent-Type: text/plain\r\n\r\nnope").unwrap();
    /// assert_eq!(r.status, 404);
    /// assert_eq!(r.header("content-type"), Some("text/plain"));
    /// assert_eq!(r.body, b"nope");
    /// ```
    pub fn decode(raw: &[u8]) -> Result<Response, Error> {
        let mut rest = raw;
        let status_line = next_line(&mut rest).ok_or(Error::Invalid)?;
        let status = std::str::from_utf8(status_line)
            .ok()
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or(Error::Invalid)?;
        let mut headers = Vec::new();
        loop {
            let line = next_line(&mut rest).ok_or(Error::Invalid)?;
            if line.is_empty() {
                break;
            }
            let line = std::str::from_utf8(line).map_err(|_| Error::Invalid)?;
            let (name, value) = line.split_once(':').ok_or(Error::Invalid)?;
            headers.push((
                name.to_string(),
                value.trim_matches(|c| c == ' ' || c == '\t').to_string(),
            ));
        }
        Ok(Response {
            status,
            headers,
            body: rest.to_vec(),
        })
    }

    /// The first value of the header `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of the header `name` (compared case-insensitively).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Takes the next `\r\n`-terminated line off `rest`.
fn next_line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let i = rest.windows(2).position(|w| w == b"\r\n")?;
    let line = &rest[..i];
    *rest = &rest[i + 2..];
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, FakeHost};

    #[test]
    fn encode() {
        let req = Request::get("https://x.example/a?b=c")
            .header("Accept", "*/*")
            .header("X-Two", "1");
        assert_eq!(
            req.encode().unwrap(),
            b"GET https://x.example/a?b=c\r\nAccept: */*\r\nX-Two: 1\r\n\r\n"
        );
        let req = Request::new("PUT", "http://h/").body("line1\r\n\r\nline2");
        assert_eq!(
            req.encode().unwrap(),
            b"PUT http://h/\r\n\r\nline1\r\n\r\nline2"
        );
        for bad in [
            Request::get("http://h/\r\nX: y"),
            Request::new("", "http://h/"),
            Request::new("GE T", "http://h/"),
            Request::get("http://h/").header("X", "a\r\nHost: evil"),
            Request::get("http://h/").header("X:Y", "a"),
            Request::get("http://h/").header("", "a"),
        ] {
            assert_eq!(bad.encode(), Err(Error::Invalid), "{:?}", bad);
        }
    }

    #[test]
    fn decode() {
        let r = Response::decode(
            b"200\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhe\r\nl",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert!(r.is_success());
        assert_eq!(r.header("content-length"), Some("5"));
        assert_eq!(
            r.header_values("Set-Cookie").collect::<Vec<_>>(),
            vec!["a=1", "b=2"]
        );
        assert_eq!(r.header("X-Nope"), None);
        assert_eq!(r.body, b"he\r\nl");
        let r = Response::decode(b"204\r\n\r\n").unwrap();
        assert_eq!((r.status, r.headers.len(), r.body.len()), (204, 0, 0));
        let r = Response::decode(b"200\r\nX-Empty:\r\nX-Tab:\tv \r\n\r\n").unwrap();
        assert_eq!(
            r.headers,
            vec![
                ("X-Empty".to_string(), String::new()),
                ("X-Tab".to_string(), "v".to_string())
            ]
        );
        for bad in [
            &b""[..],
            b"200",
            b"abc\r\n\r\n",
            b"200\r\nNoColon\r\n\r\n",
            b"200\r\nA: b\r\n",
            b"99999\r\n\r\n",
        ] {
            assert_eq!(
                Response::decode(bad),
                Err(Error::Invalid),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn round_trip_through_the_host() {
        let body = vec![b'z'; 100_000]; // larger than the first buffer
        let reply = body.clone();
        FakeHost::new()
            .http(move |req| {
                if req.url == "https://h.example/down" {
                    return Err(Error::Io);
                }
                Ok(Response {
                    status: 201,
                    headers: vec![("Location".into(), "/x".into())],
                    body: reply.clone(),
                })
            })
            .install();
        let resp = Request::post("https://h.example/", b"data".to_vec())
            .header("X-A", "1")
            .send()
            .unwrap();
        assert_eq!(resp.status, 201);
        assert_eq!(resp.header("Location"), Some("/x"));
        assert_eq!(resp.body, body);
        assert_eq!(last_response().unwrap().body, body);
        assert_eq!(
            testing::requests(),
            vec![Request::post("https://h.example/", b"data".to_vec()).header("X-A", "1")]
        );
        assert_eq!(
            Request::get("https://h.example/down").send(),
            Err(Error::Io)
        );
        assert_eq!(last_response(), Err(Error::NotFound));

        FakeHost::new().install();
        assert_eq!(
            Request::get("https://denied.example/").send(),
            Err(Error::Denied)
        );
        assert!(testing::log().contains("denied"));
    }
}
