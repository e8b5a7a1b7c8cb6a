//! The content context's application side. So far: where uploaded files live ([`storage`]).
//! The upload endpoint, the atomizer, the read models and search follow (ADR 0012).

pub mod storage;
