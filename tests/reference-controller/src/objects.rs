//! The ConfigMaps the scenarios work on (the apiserver fixture serves only ConfigMaps in
//! `default`): labelled `refctl=<scenario slug>` so scenarios never see each other's
//! objects, and `role=<parent|child|item|status>`.

use std::collections::BTreeMap;

use futures::{stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    api::{ObjectMeta, PostParams},
    Api,
};

/// Creates at most this many objects at a time.
const CREATE_CONCURRENCY: usize = 8;

/// A ConfigMap named `name` with `labels` and `data`.
pub fn config_map(name: &str, labels: &[(&str, &str)], data: &[(&str, String)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..ConfigMap::default()
    }
}

/// Creates every object in `objects`, a few at a time.
pub async fn create_all(api: &Api<ConfigMap>, objects: Vec<ConfigMap>) -> kube::Result<()> {
    stream::iter(objects)
        .map(|cm| async move { api.create(&PostParams::default(), &cm).await.map(drop) })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect()
        .await
}

/// Creates `count` objects `{slug}-{i}` labelled `refctl={slug},role=item`, each with
/// `filler` bytes of data.
pub async fn create_items(
    api: &Api<ConfigMap>,
    slug: &str,
    count: usize,
    filler_len: usize,
) -> kube::Result<()> {
    let items = (0..count)
        .map(|i| {
            config_map(
                &format!("{slug}-{i}"),
                &[("refctl", slug), ("role", "item")],
                &[("filler", filler(filler_len))],
            )
        })
        .collect();
    create_all(api, items).await
}

/// The label selector of a scenario's objects of one role.
pub fn selector(slug: &str, role: &str) -> String {
    format!("refctl={slug},role={role}")
}

/// A payload of `len` bytes, so LIST responses carry realistic sizes.
pub fn filler(len: usize) -> String {
    "x".repeat(len)
}
