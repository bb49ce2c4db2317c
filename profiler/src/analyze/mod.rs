//! From events to answers: requests read as the API server reads them ([`k8s`]), joined
//! with their costs ([`attribute`]) and grouped into report rows ([`aggregate`]); who
//! sent them, by remote address ([`clients`]).

pub mod aggregate;
pub mod attribute;
pub mod clients;
pub mod k8s;
