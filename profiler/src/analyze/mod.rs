//! From records to answers, one record at a time, for a capture file and the live
//! daemon alike: requests read as the API server reads them ([`k8s`], [`request`]),
//! who sent them, by remote address ([`clients`]), joined with their ends and samples
//! ([`attribute`]), grouped into mergeable [`rows`] with latency histograms
//! ([`latency`]) and interned [`stacks`], rendered as report rows ([`aggregate`]), and
//! kept per time bucket by the daemon ([`window`]).

pub mod aggregate;
pub mod attribute;
pub mod clients;
pub mod detect;
pub mod dimension;
pub mod filter;
pub mod k8s;
pub mod latency;
pub mod names;
pub mod request;
pub mod rows;
pub mod stacks;
pub mod window;

pub use dimension::{Dimension, DEFAULT_BY, MIXED};
