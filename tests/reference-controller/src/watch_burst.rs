//! Reconciles set off by watch events: another client (the writer, with a user agent of
//! its own) updates many of the controller's objects at once, a few times, at irregular
//! intervals; each update reaches the controller's WATCH as an event, and it reconciles
//! (GETs) every updated object right away. The ledger marks each round of writes.

use std::{sync::Arc, time::Duration};

use futures::{stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    api::{Patch, PatchParams},
    runtime::{controller::Action, watcher, Controller},
    Api, ResourceExt,
};
use serde_json::json;

use crate::{
    client::{self, Http},
    error::{until_reconciled, Error},
    ledger::{self, Ledger, Record},
    objects,
    reconcile::{ReconcileError, Span},
    Scenario,
};

const SLUG: &str = "watch-burst";
const USER_AGENT: &str = "refctl-watch-burst";
const WRITER: &str = "refctl-watch-burst/writer";

/// Seconds before each round of writes, irregular (so no resync could explain them).
const PAUSES: [f64; 4] = [1.0, 1.7, 1.2, 2.1];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Objects the writer creates and then updates in every round.
    #[arg(long, default_value_t = 30)]
    objects: usize,
    /// Rounds of writes (at most 4).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

struct Ctx {
    api: Api<ConfigMap>,
    ledger: Ledger,
}

pub async fn run(s: &Scenario, args: &Args) -> Result<(), Error> {
    s.started(USER_AGENT);
    let rounds = args.rounds.min(PAUSES.len());
    let writer = client::build(&s.kubeconfig, Http::H1, WRITER, None, &s.ledger).await?;
    let writer: Api<ConfigMap> = Api::default_namespaced(writer);
    objects::create_items(&writer, SLUG, args.objects, 256)
        .await
        .map_err(Error::Setup)?;

    let client = client::build(&s.kubeconfig, Http::H1, USER_AGENT, None, &s.ledger).await?;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let selector = objects::selector(SLUG, "item");
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        ledger: s.ledger.clone(),
    });
    let run = Controller::new(api, watcher::Config::default().labels(&selector)).run(
        reconcile,
        |_, _, _| Action::await_change(),
        ctx,
    );
    let ledger = s.ledger.clone();
    let objects = args.objects;
    let writes = async move {
        for (round, pause) in PAUSES.iter().take(rounds).enumerate() {
            tokio::time::sleep(Duration::from_secs_f64(*pause)).await;
            ledger.write(&Record::WriteRound {
                time: ledger::now(),
                round: round as u32 + 1,
                objects,
            });
            update_all(&writer, objects, round).await?;
        }
        Ok::<_, Error>(())
    };
    let expected = args.objects * (rounds + 1);
    let limit = Duration::from_secs_f64(PAUSES.iter().sum::<f64>() + 60.0);
    let (reconciled, written) = tokio::join!(until_reconciled(run, expected, limit), writes);
    written.and(reconciled)
}

/// Updates every object at once (a merge patch of its data).
async fn update_all(api: &Api<ConfigMap>, objects: usize, round: usize) -> Result<(), Error> {
    stream::iter(0..objects)
        .map(|i| async move {
            let patch = json!({"data": {"round": round.to_string()}});
            api.patch(
                &format!("{SLUG}-{i}"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map(drop)
        })
        .buffer_unordered(objects)
        .try_collect::<()>()
        .await
        .map_err(Error::Setup)
}

async fn reconcile(object: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let name = object.name_any();
    let span = Span::start(&ctx.ledger, &name);
    let got = ctx.api.get(&name).await;
    span.finish(got)
}
