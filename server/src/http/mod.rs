//! HTTP/1.1 framing: request parsing (with `httparse`) and response writing.
//!
//! The reactor owns the sockets; this module only turns bytes into
//! requests and responses into bytes, so it is pure and fuzzable.

mod head;
mod request;
mod response;

pub use head::{parse_head, Head};
pub use request::{is_head, parse, HttpError, Method, ParseLimits, Parsed, Request};
pub use response::{reason, write_continue, write_parts, Response};
