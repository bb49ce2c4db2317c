//! Who sent a request, beyond its user agent: the request's remote address (Go's
//! `http.Request.RemoteAddr`) mapped to the Pod that has that IP, and the Pod to the
//! workload that owns it.
//!
//! [`Clients::watch`] keeps a kube-rs reflector on the Pods of every namespace and an
//! index from Pod IP to Pod beside it; [`Clients::identify`] reads the index. Only what
//! identification needs is kept of each Pod: name, namespace, owner references, the
//! `pod-template-hash` label, `spec.hostNetwork`, and `status.podIP(s)`, `hostIP` and
//! `phase`.
//!
//! An IP names a Pod only when it names one Pod unambiguously:
//! - Pods with `hostNetwork: true` have their node's IP (`status.podIP == status.hostIP`),
//!   which every other host-network Pod on that node and the node's own processes
//!   (kubelet, kube-proxy) share: a node IP maps to no Pod, even when one host-network
//!   Pod is all the cluster shows there.
//! - An IP several running Pods share maps to no Pod. A Pod that finished (`Succeeded`,
//!   `Failed`) may keep its IP while a new Pod gets it: the running one wins, and a
//!   finished Pod is named only when it alone has the IP.
//!
//! Requests from outside the cluster, from the node itself, or sent before the first
//! list arrived are identified by their IP alone.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    net::IpAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use kube::{
    api::{Api, ListParams},
    runtime::{reflector, watcher, WatchStreamExt as _},
};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// The label a Deployment's ReplicaSet gives its Pods; the ReplicaSet is named
/// `<deployment>-<hash>`.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Who sent a request, as far as the cluster tells.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The client's IP (`10.1.0.5`, `::1`), or the remote address as it came when it
    /// does not parse (a Unix socket's `@`, an empty string).
    pub ip: String,
    /// The Pod that has this IP, `namespace/name`; `None` when no single Pod has it.
    pub pod: Option<String>,
    /// The Pod's controller: `Deployment/namespace/name` (a ReplicaSet named after its
    /// Pods' `pod-template-hash` stands for its Deployment), `StatefulSet/…`,
    /// `DaemonSet/…`, else the owner reference's `kind/namespace/name` (`Node/name` for
    /// a static Pod's mirror); `None` without a Pod or owner.
    pub owner: Option<String>,
}

/// Maps remote addresses to Pods. Cheap to clone: clones share one index, which the
/// future [`Clients::watch`] returns keeps up to date.
#[derive(Clone, Debug, Default)]
pub struct Clients {
    shared: Option<Arc<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    index: RwLock<Index>,
    /// Watch errors seen (each also logged); the watch retries with backoff.
    watch_errors: AtomicU64,
}

/// Why Pods cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error("no cluster access: {source}; give apiprof a kubeconfig (KUBECONFIG or ~/.kube/config) or run it in a Pod with a service account, or go without client identities")]
    NoConfig {
        /// What kube-rs tried.
        #[source]
        source: kube::config::InferConfigError,
    },
    /// The configuration was found but no client could be built from it.
    #[error("building a Kubernetes client for {cluster_url}: {source}; check the kubeconfig's server, certificates and credentials")]
    Client {
        /// The API server the configuration names.
        cluster_url: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The API server refused the credentials (401).
    #[error("the API server did not accept apiprof's credentials when listing Pods: {source}; renew the kubeconfig's token or certificate")]
    Unauthorized {
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// The credentials may not list Pods in every namespace (403).
    #[error("apiprof may not list Pods in all namespaces: {source}; it needs list and watch on pods cluster-wide: bind its user or service account to a ClusterRole with `verbs: [list, watch]` on `pods`")]
    Forbidden {
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// Listing Pods failed otherwise (network, TLS, server error).
    #[error("listing Pods in all namespaces failed: {source}; check that the API server is reachable at the kubeconfig's server address")]
    List {
        /// Why.
        #[source]
        source: kube::Error,
    },
}

impl Clients {
    /// No cluster access: every address is identified by its IP alone.
    pub fn none() -> Self {
        Self::default()
    }

    /// [`Clients::watch`] with the cluster access kubectl would use: `KUBECONFIG`,
    /// `~/.kube/config`, else the in-cluster service account.
    pub async fn connect(
    ) -> Result<(Clients, impl Future<Output = ()> + Send + 'static), ClientsError> {
        let config = kube::Config::infer()
            .await
            .map_err(|source| ClientsError::NoConfig { source })?;
        let cluster_url = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(|source| ClientsError::Client {
            cluster_url,
            source,
        })?;
        Self::watch(client).await
    }

    /// Checks that `client` may list Pods in all namespaces, then returns the clients
    /// and the future that watches Pods and keeps the index: spawn it (it runs until
    /// dropped, retrying with backoff after watch errors). Until its first list is in,
    /// addresses are identified by IP alone.
    ///
    /// The first list, and every re-list, asks for `resourceVersion=0`: it is served
    /// from the API server's watch cache, not read from etcd (a full list of Pods is
    /// exactly the kind of load apiprof looks for).
    pub async fn watch(
        client: kube::Client,
    ) -> Result<(Clients, impl Future<Output = ()> + Send + 'static), ClientsError> {
        let api: Api<Pod> = Api::all(client);
        api.list(&ListParams::default().limit(1))
            .await
            .map_err(refused)?;
        let shared = Arc::new(Shared::default());
        let clients = Clients {
            shared: Some(shared.clone()),
        };
        let (store, writer) = reflector::store();
        let events = watcher(api, watcher::Config::default().any_semantic())
            .modify(keep_identity)
            .default_backoff();
        let run = async move {
            let mut events = std::pin::pin!(reflector::reflector(writer, events));
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => shared.apply(&event, &store),
                    Err(error) => {
                        shared.watch_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, "watching Pods failed, retrying; client identities may be stale (apiprof needs list and watch on pods in all namespaces)");
                    }
                }
            }
        };
        Ok((clients, run))
    }

    /// Who sent a request from `remote_addr` (`IP:port`, `[IPv6]:port`, or an IP).
    pub fn identify(&self, remote_addr: &str) -> Identity {
        let Some(ip) = parse_ip(remote_addr) else {
            return Identity {
                ip: remote_addr.to_owned(),
                ..Identity::default()
            };
        };
        let found = self.shared.as_ref().and_then(|shared| {
            let index = shared.index.read().unwrap_or_else(|e| e.into_inner());
            index.lookup(ip)
        });
        let (pod, owner) = match found {
            Some((pod, owner)) => (Some(pod), owner),
            None => (None, None),
        };
        Identity {
            ip: ip.to_string(),
            pod,
            owner,
        }
    }

    /// Errors the Pod watch has met so far (each was logged; the watch retried).
    pub fn watch_errors(&self) -> u64 {
        self.shared
            .as_ref()
            .map_or(0, |s| s.watch_errors.load(Ordering::Relaxed))
    }
}

impl Shared {
    /// Follows one watch event, which the reflector has already applied to `store`.
    fn apply(&self, event: &watcher::Event<Pod>, store: &reflector::Store<Pod>) {
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Apply(pod) => index.insert(pod),
            watcher::Event::Delete(pod) => index.remove(&key(pod)),
            // A (re-)list replaces every Pod at once, when it is complete.
            watcher::Event::InitDone => {
                *index = Index::default();
                for pod in store.state() {
                    index.insert(&pod);
                }
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }
}

/// The 401 and 403 a first list may get, named; anything else as it is.
fn refused(source: kube::Error) -> ClientsError {
    match &source {
        kube::Error::Api(status) if status.code == 401 => ClientsError::Unauthorized { source },
        kube::Error::Api(status) if status.code == 403 => ClientsError::Forbidden { source },
        _ => ClientsError::List { source },
    }
}

/// Drops what identification does not need before the reflector stores a Pod.
fn keep_identity(pod: &mut Pod) {
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network);
    pod.spec = host_network.map(|host_network| PodSpec {
        host_network: Some(host_network),
        ..PodSpec::default()
    });
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    if let Some(labels) = &mut meta.labels {
        labels.retain(|name, _| name == POD_TEMPLATE_HASH);
    }
    pod.status = pod.status.take().map(|s| PodStatus {
        host_ip: s.host_ip,
        phase: s.phase,
        pod_ip: s.pod_ip,
        pod_ips: s.pod_ips,
        ..PodStatus::default()
    });
}

/// Pods by IP.
#[derive(Debug, Default)]
struct Index {
    /// Every IP some Pod has, with those Pods by `namespace/name`.
    by_ip: HashMap<IpAddr, BTreeMap<String, Entry>>,
    /// Each Pod's IPs, to forget them when it changes or goes.
    ips_of: HashMap<String, Vec<IpAddr>>,
}

/// What the index keeps of one Pod.
#[derive(Clone, Debug)]
struct Entry {
    owner: Option<String>,
    /// `Succeeded` or `Failed`: its containers are gone, its IP may be reused.
    finished: bool,
    /// On its node's network: its IP is the node's.
    host_network: bool,
}

impl Index {
    fn insert(&mut self, pod: &Pod) {
        let key = key(pod);
        self.remove(&key);
        let status = pod.status.as_ref();
        let mut ips: Vec<IpAddr> = status
            .and_then(|s| s.pod_ips.as_ref())
            .into_iter()
            .flatten()
            .map(|p| p.ip.as_str())
            .chain(status.and_then(|s| s.pod_ip.as_deref()))
            .filter_map(|ip| ip.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect();
        ips.sort();
        ips.dedup();
        if ips.is_empty() {
            return;
        }
        let host_ip = status.and_then(|s| s.host_ip.as_deref());
        let entry = Entry {
            owner: owner(pod),
            finished: matches!(
                status.and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            ),
            host_network: pod.spec.as_ref().and_then(|s| s.host_network) == Some(true)
                || (host_ip.is_some() && host_ip == status.and_then(|s| s.pod_ip.as_deref())),
        };
        for ip in &ips {
            self.by_ip
                .entry(*ip)
                .or_default()
                .insert(key.clone(), entry.clone());
        }
        self.ips_of.insert(key, ips);
    }

    fn remove(&mut self, key: &str) {
        for ip in self.ips_of.remove(key).unwrap_or_default() {
            if let Some(pods) = self.by_ip.get_mut(&ip) {
                pods.remove(key);
                if pods.is_empty() {
                    self.by_ip.remove(&ip);
                }
            }
        }
    }

    /// The one Pod (and its owner) that has `ip`, if exactly one does.
    fn lookup(&self, ip: IpAddr) -> Option<(String, Option<String>)> {
        let pods = self.by_ip.get(&ip)?;
        let mut running = pods.iter().filter(|(_, e)| !e.finished);
        let (pod, entry) = match (running.next(), running.next()) {
            (Some(one), None) => one,
            (None, _) if pods.len() == 1 => pods.iter().next()?,
            _ => return None,
        };
        if entry.host_network {
            return None;
        }
        Some((pod.clone(), entry.owner.clone()))
    }
}

/// `namespace/name`.
fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The workload a Pod belongs to, from its controller owner reference (or its first
/// one, when none is marked controller).
fn owner(pod: &Pod) -> Option<String> {
    let refs = pod.metadata.owner_references.as_deref().unwrap_or_default();
    let owner = refs
        .iter()
        .find(|r| r.controller == Some(true))
        .or_else(|| refs.first())?;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let hash = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_TEMPLATE_HASH));
    let deployment = hash
        .and_then(|hash| owner.name.strip_suffix(hash.as_str()))
        .and_then(|prefix| prefix.strip_suffix('-'))
        .filter(|name| !name.is_empty());
    Some(match (owner.kind.as_str(), deployment) {
        ("ReplicaSet", Some(deployment)) => format!("Deployment/{namespace}/{deployment}"),
        // A static Pod's mirror is owned by its node, which has no namespace.
        ("Node", _) => format!("Node/{}", owner.name),
        (kind, _) => format!("{kind}/{namespace}/{}", owner.name),
    })
}

/// The client IP of a remote address, as reports show it; the text itself when it is
/// not an address.
pub fn ip_of(remote_addr: &str) -> String {
    parse_ip(remote_addr).map_or_else(|| remote_addr.to_owned(), |ip| ip.to_string())
}

/// The IP of a remote address: `IP:port`, `[IPv6]:port` (a zone, `%eth0`, is dropped),
/// or a bare IP. IPv4-mapped IPv6 addresses become IPv4, as Pod IPs are written.
fn parse_ip(remote_addr: &str) -> Option<IpAddr> {
    let ip = if let Ok(ip) = remote_addr.parse::<IpAddr>() {
        ip
    } else if let Some(rest) = remote_addr.strip_prefix('[') {
        let (host, _port) = rest.split_once(']')?;
        let host = host.split_once('%').map_or(host, |(ip, _zone)| ip);
        host.parse().ok()?
    } else {
        let (host, _port) = remote_addr.rsplit_once(':')?;
        host.parse().ok()?
    };
    Some(ip.to_canonical())
}
