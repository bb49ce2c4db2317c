//! A deterministic mix of every verb the controllers use — GET, LIST, WATCH, CREATE,
//! UPDATE — with every resourceVersion class, on HTTP/1.1 or HTTP/2.
//!
//! Per run: 3 creates; 3 gets (most_recent; the last before the update), 1 get of a
//! missing object (404, most_recent), 1 get
//! `any`, 1 get `not_older_than`; 2 lists `most_recent`, 2 `any`, 1 `not_older_than`
//! (implicit), 1 `not_older_than` (NotOlderThan), 1 `exact`, a first page
//! (`most_recent`, limit 2) and its `continue`; 3 watches the server ends after 1 s
//! (`exact` from the first object's version, `any` from 0, `most_recent` unset);
//! 1 update.

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    api::{GetParams, ListParams, PostParams, VersionMatch, WatchParams},
    Api, ResourceExt,
};

use crate::{
    client::{self, Http},
    error::Error,
    objects, Scenario,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// HTTP version to speak.
    #[arg(long, value_enum, default_value = "h2")]
    http: Http,
}

pub async fn run(s: &Scenario, args: &Args) -> Result<(), Error> {
    let (slug, user_agent) = match args.http {
        Http::H1 => ("mixed-h1", "refctl-mixed/h1"),
        Http::H2 => ("mixed-h2", "refctl-mixed/h2"),
    };
    s.started(user_agent);
    let client = client::build(&s.kubeconfig, args.http, user_agent, None, &s.ledger).await?;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let api_err = |what| move |source| Error::Api { what, source };
    let selector = objects::selector(slug, "item");

    let mut rvs = Vec::new();
    for i in 0..3 {
        let cm = objects::config_map(
            &format!("{slug}-{i}"),
            &[("refctl", slug), ("role", "item")],
            &[("filler", objects::filler(300))],
        );
        let created = api
            .create(&PostParams::default(), &cm)
            .await
            .map_err(api_err("create"))?;
        rvs.push(created.resource_version().unwrap_or_default());
    }
    let (first_rv, rv) = (rvs[0].clone(), rvs[2].clone());
    let first = format!("{slug}-0");

    for _ in 0..2 {
        api.get(&first).await.map_err(api_err("get"))?;
    }
    let missing = api
        .get_opt(&format!("{slug}-missing"))
        .await
        .map_err(api_err("get missing"))?;
    assert!(missing.is_none(), "{slug}-missing exists");
    api.get_with(&first, &GetParams::any())
        .await
        .map_err(api_err("get any"))?;
    api.get_with(&first, &GetParams::at(&rv))
        .await
        .map_err(api_err("get at"))?;

    let mine = ListParams::default().labels(&selector);
    let lists = [
        mine.clone(),
        mine.clone(),
        mine.clone().match_any(),
        mine.clone().match_any(),
        mine.clone().at(&rv),
        mine.clone().at(&rv).matching(VersionMatch::NotOlderThan),
        mine.clone().at(&rv).matching(VersionMatch::Exact),
    ];
    for lp in &lists {
        api.list(lp).await.map_err(api_err("list"))?;
    }
    let page = api
        .list(&mine.clone().limit(2))
        .await
        .map_err(api_err("list page"))?;
    let token = page.metadata.continue_.unwrap_or_default();
    api.list(&mine.clone().limit(2).continue_token(&token))
        .await
        .map_err(api_err("list continue"))?;

    let wp = WatchParams::default().labels(&selector).timeout(1);
    for from in [first_rv.as_str(), "0", ""] {
        let events = api.watch(&wp, from).await.map_err(api_err("watch"))?;
        let events: Vec<_> = events
            .try_collect()
            .await
            .map_err(api_err("watch events"))?;
        tracing::debug!(from, events = events.len(), "watch ended");
    }

    let mut object = api.get(&first).await.map_err(api_err("get for update"))?;
    object
        .data
        .get_or_insert_default()
        .insert("updated".into(), "yes".into());
    api.replace(&first, &PostParams::default(), &object)
        .await
        .map_err(api_err("update"))?;
    Ok(())
}
