//! Exit codes that mean something (documented in `worklane --help`).

/// A command's failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    /// 1: the command failed.
    pub fn failed(m: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: m.into(),
        }
    }
    /// 2: the command line is wrong.
    pub fn usage(m: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: m.into(),
        }
    }
    /// 3: the server refused the request (4xx).
    pub fn refused(m: impl Into<String>) -> Self {
        Self {
            code: 3,
            message: m.into(),
        }
    }
    /// 4: the server could not be reached or failed (5xx).
    pub fn unreachable(m: impl Into<String>) -> Self {
        Self {
            code: 4,
            message: m.into(),
        }
    }
    /// 5: the configuration is invalid.
    pub fn config(m: impl Into<String>) -> Self {
        Self {
            code: 5,
            message: m.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::failed(format!("{e:#}"))
    }
}
