//! The career context's application side. So far its HTTP slice: the caller's declared
//! skills, read from their profile's stream (no read model yet).

pub mod http;
