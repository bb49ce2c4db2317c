//! What a request means to the Kubernetes API server, worked out from its method, path
//! and query in userspace, as the apiserver's `RequestInfoFactory` and list/watch
//! options do.

mod query;
mod request_info;
mod rv_class;

pub use query::Query;
pub use request_info::RequestInfo;
pub use rv_class::{RvClass, Selector};
