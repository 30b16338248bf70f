use std::fmt;

/// An error code returned by a host function (a negative result in the
/// ABI), or a malformed answer from the host.
///
/// The variants mirror the codes of `hostfuncs/abi` (`docs/abi.md`); codes
/// this SDK does not know yet come back as [`Error::Unknown`].
///
/// ```
/// use wasmrunner::Error;
///
/// assert_eq!(Error::from_code(-3), Error::NotFound);
/// assert_eq!(Error::NotFound.code(), -3);
/// assert_eq!(Error::Canceled.to_string(), "canceled");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// -1: a pointer and length do not lie inside guest memory.
    Fault,
    /// -2: an argument exceeds a limit of the host.
    TooLarge,
    /// -3: no such variable, dependency, file or field.
    NotFound,
    /// -4: a malformed argument (bad UTF-8, index, path or request), or a
    /// malformed answer from the host.
    Invalid,
    /// -5: the function cannot be called now (e.g. outside a step).
    Phase,
    /// -6: the handler's manifest does not allow it.
    Denied,
    /// -7: the job was cancelled or timed out meanwhile.
    Canceled,
    /// -8: the host failed (network, disk); the job log says why.
    Io,
    /// Any other negative code.
    Unknown(i32),
}

impl Error {
    /// The error for a negative code returned by a host function.
    pub fn from_code(code: i32) -> Error {
        match code {
            -1 => Error::Fault,
            -2 => Error::TooLarge,
            -3 => Error::NotFound,
            -4 => Error::Invalid,
            -5 => Error::Phase,
            -6 => Error::Denied,
            -7 => Error::Canceled,
            -8 => Error::Io,
            c => Error::Unknown(c),
        }
    }

    /// The ABI code of the error (negative).
    pub fn code(&self) -> i32 {
        match *self {
            Error::Fault => -1,
            Error::TooLarge => -2,
            Error::NotFound => -3,
            Error::Invalid => -4,
            Error::Phase => -5,
            Error::Denied => -6,
            Error::Canceled => -7,
            Error::Io => -8,
            Error::Unknown(c) => c,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Fault => f.write_str("fault"),
            Error::TooLarge => f.write_str("too large"),
            Error::NotFound => f.write_str("not found"),
            Error::Invalid => f.write_str("invalid"),
            Error::Phase => f.write_str("wrong phase"),
            Error::Denied => f.write_str("denied"),
            Error::Canceled => f.write_str("canceled"),
            Error::Io => f.write_str("i/o error"),
            Error::Unknown(c) => write!(f, "unknown error {}", c),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match e {
            Error::NotFound => ErrorKind::NotFound,
            Error::Denied => ErrorKind::PermissionDenied,
            Error::Invalid => ErrorKind::InvalidInput,
            Error::Canceled => ErrorKind::Interrupted,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// Turns a status result (0 or a negative code) into a Result.
pub(crate) fn status(r: i32) -> Result<(), Error> {
    if r < 0 {
        Err(Error::from_code(r))
    } else {
        Ok(())
    }
}
