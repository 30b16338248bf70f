//! The artifacts of the jobs this job depends on, read without extracting.

use std::io;

use crate::buf::{read_growing, read_string, split_list};
use crate::{sys, Error};

/// A job whose artifacts this job depends on: see [`dependencies`].
///
/// The engine also extracts every dependency's artifacts into the build
/// dir before the script, as GitLab runners do; a `Dependency` reads them
/// from the archive instead, one file at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    index: i32,
    /// The dependency's job id.
    pub id: i64,
    /// The dependency's job name.
    pub name: String,
}

/// The jobs whose artifacts this job depends on (`dependencies:` or
/// `needs:` in `.gitlab-ci.yml`).
///
/// ```
/// for dep in wasmrunner::dependencies() {
///     wasmrunner::outputln!("job {} ({}): {:?}", dep.id, dep.name, dep.files());
/// }
/// ```
pub fn dependencies() -> Vec<Dependency> {
    (0..sys::dep_count().max(0))
        .map(|index| Dependency {
            index,
            id: sys::dep_id(index),
            name: read_string(|buf| sys::dep_name(index, buf)).unwrap_or_default(),
        })
        .collect()
}

impl Dependency {
    /// The paths of the files in the dependency's artifacts; downloads the
    /// archive the first time. [`Error::NotFound`] if it has none.
    ///
    /// ```
    /// # for dep in wasmrunner::dependencies() {
    /// let files = dep.files().unwrap_or_default();
    /// # }
    /// ```
    pub fn files(&self) -> Result<Vec<String>, Error> {
        read_growing(|buf| sys::dep_files(self.index, buf)).map(|b| split_list(&b))
    }

    /// The size of the file `name` of the dependency's artifacts.
    pub fn size(&self, name: &str) -> Result<u64, Error> {
        let n = sys::dep_file_size(self.index, name.as_bytes());
        if n < 0 {
            return Err(Error::from_code(i32::try_from(n).unwrap_or(-4)));
        }
        Ok(n as u64)
    }

    /// The content of the file `name` of the dependency's artifacts.
    ///
    /// ```
    /// # for dep in wasmrunner::dependencies() {
    /// match dep.read("build/version.txt") {
    ///     Ok(data) => wasmrunner::outputln!("version {}", String::from_utf8_lossy(&data)),
    ///     Err(wasmrunner::Error::NotFound) => wasmrunner::outputln!("no version file"),
    ///     Err(e) => wasmrunner::outputln!("reading: {e}"),
    /// }
    /// # }
    /// ```
    pub fn read(&self, name: &str) -> Result<Vec<u8>, Error> {
        let size = self.size(name)?;
        let size = usize::try_from(size).map_err(|_| Error::TooLarge)?;
        let mut data = vec![0u8; size];
        let mut off = 0;
        while off < size {
            let n = sys::dep_read(self.index, name.as_bytes(), off as i64, &mut data[off..]);
            if n < 0 {
                return Err(Error::from_code(n));
            }
            if n == 0 {
                break;
            }
            off += n as usize;
        }
        data.truncate(off);
        Ok(data)
    }

    /// Opens the file `name` of the dependency's artifacts for reading
    /// with [`std::io::Read`].
    ///
    /// ```
    /// use std::io::{BufRead, BufReader};
    ///
    /// # for dep in wasmrunner::dependencies() {
    /// if let Ok(f) = dep.open("report.csv") {
    ///     for line in BufReader::new(f).lines() {
    ///         wasmrunner::outputln!("{}", line.unwrap());
    ///     }
    /// }
    /// # }
    /// ```
    pub fn open(&self, name: &str) -> Result<DepFile, Error> {
        let size = self.size(name)?;
        Ok(DepFile {
            index: self.index,
            name: name.to_string(),
            size,
            pos: 0,
        })
    }
}

/// A file of a dependency's artifacts, open for reading: see
/// [`Dependency::open`]. It implements [`std::io::Read`] and
/// [`std::io::Seek`].
#[derive(Debug, Clone)]
pub struct DepFile {
    index: i32,
    name: String,
    size: u64,
    pos: u64,
}

impl DepFile {
    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

impl io::Read for DepFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        let n = sys::dep_read(self.index, self.name.as_bytes(), self.pos as i64, buf);
        if n < 0 {
            return Err(Error::from_code(n).into());
        }
        self.pos += n as u64;
        Ok(n as usize)
    }
}

impl io::Seek for DepFile {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        let target = match pos {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::End(d) => add(self.size, d),
            io::SeekFrom::Current(d) => add(self.pos, d),
        };
        match target {
            Some(p) if p <= i64::MAX as u64 => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}

fn add(base: u64, d: i64) -> Option<u64> {
    if d >= 0 {
        base.checked_add(d as u64)
    } else {
        base.checked_sub(d.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;
    use std::io::{Read, Seek, SeekFrom};

    fn setup() -> Vec<u8> {
        let big: Vec<u8> = (0..10000u32).map(|i| (i % 251) as u8).collect();
        FakeHost::new()
            .dependency(
                11,
                "build",
                [("bin/tool", big.clone()), ("readme.md", b"y".to_vec())],
            )
            .dependency(12, "empty", Vec::<(String, Vec<u8>)>::new())
            .install();
        big
    }

    #[test]
    fn list_and_read() {
        let big = setup();
        let deps = dependencies();
        assert_eq!(deps.len(), 2);
        assert_eq!((deps[0].id, deps[0].name.as_str()), (11, "build"));
        assert_eq!(deps[0].files().unwrap(), vec!["bin/tool", "readme.md"]);
        assert_eq!(deps[1].files(), Err(Error::NotFound));
        assert_eq!(deps[0].size("bin/tool"), Ok(10000));
        assert_eq!(deps[0].read("bin/tool").unwrap(), big);
        assert_eq!(deps[0].read("readme.md").unwrap(), b"y");
        assert_eq!(deps[0].read("nope"), Err(Error::NotFound));
    }

    #[test]
    fn open_reads_and_seeks() {
        let big = setup();
        let dep = &dependencies()[0];
        let mut f = dep.open("bin/tool").unwrap();
        assert_eq!(f.len(), 10000);
        let mut all = Vec::new();
        f.read_to_end(&mut all).unwrap();
        assert_eq!(all, big);
        f.seek(SeekFrom::End(-10)).unwrap();
        let mut tail = Vec::new();
        f.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &big[9990..]);
        assert!(f.seek(SeekFrom::Current(-20000)).is_err());
        assert!(dep.open("nope").is_err());
    }
}
