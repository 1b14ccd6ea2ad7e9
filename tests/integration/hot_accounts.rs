//! Hot accounts (issue #16): an account that counts its metered requests on quota blocks taken
//! from its daily counter stays exact across containers and under concurrency, its usage adds
//! up over the counter and the blocks, and a throttled counter switches the account to blocks
//! by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use orrery::App;
use orrery::access::manage::UsageIndex;
use orrery::access::{Caller, QuotaClass, Refused, admit, give_back, quota};
use orrery::config::Config;
use orrery_tests::{Backend, TestOptions};

on_every_store!(
    a_hot_account_admits_exactly_its_limit_across_containers,
    a_downgrade_never_admits_past_the_new_limit,
);

const LIMIT: u64 = 230;
const ENDPOINT: &str = "POST /v1/charts";

fn config() -> Config {
    Config {
        tiers: orrery_tests::tiers_with(&[("free", "charts", LIMIT), ("basic", "charts", 60)]),
        analytics_flush_interval: Duration::from_secs(3600),
        ..Config::default()
    }
}

/// Takes units in `containers`, `tasks` at a time each, until every task is refused: the units
/// admitted (with the item each was counted on).
async fn admit_until_refused(
    containers: &[App],
    caller: &Caller,
    tasks: usize,
) -> Vec<orrery::access::auth::Admitted> {
    let admitted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut running = Vec::new();
    for app in containers {
        for _ in 0..tasks {
            let (app, caller, admitted, failures) = (
                app.clone(),
                caller.clone(),
                admitted.clone(),
                failures.clone(),
            );
            running.push(tokio::spawn(async move {
                loop {
                    match admit(&app, &caller, QuotaClass::Charts, ENDPOINT).await {
                        Ok(unit) => admitted.lock().unwrap().push(unit),
                        Err(Refused::Exhausted(_)) => break,
                        Err(Refused::Failed(err)) => {
                            failures.fetch_add(1, Ordering::SeqCst);
                            panic!("{err:?}");
                        }
                    }
                }
            }));
        }
    }
    for task in running {
        task.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    Arc::try_unwrap(admitted).unwrap().into_inner().unwrap()
}

async fn a_hot_account_admits_exactly_its_limit_across_containers(kind: Backend) {
    let backend = orrery_tests::backend_with(kind, TestOptions { config: config() }).await;
    let app = backend.app.clone();
    let created = orrery_tests::new_account_on(&app, true).await;
    let caller = orrery::access::auth::authenticate(
        &app,
        &orrery_tests::bearer_headers(&created.api_key.key),
    )
    .await
    .unwrap();
    assert!(caller.hot_quota);

    // Three containers, eight requests at a time each.
    let containers = [
        app.clone(),
        backend.second_container(),
        backend.second_container(),
    ];
    let mut admitted = admit_until_refused(&containers, &caller, 8).await;
    assert_eq!(
        admitted.len() as u64,
        LIMIT,
        "exactly the limit, never more"
    );
    let blocks: std::collections::HashSet<_> = admitted
        .iter()
        .map(|unit| unit.counter.sk.clone())
        .collect();
    assert!(
        blocks.len() >= 5 && blocks.iter().all(|sk| sk.matches('#').count() == 3),
        "every unit was counted on a block (230 units: blocks of 50 and the rest): {blocks:?}"
    );
    assert_eq!(
        orrery_tests::units_used_today(&app, &caller.account_id, QuotaClass::Charts).await,
        LIMIT as i64
    );
    let usage = UsageIndex::load(
        app.store.as_ref(),
        &caller.account_id,
        admitted[0].at.date_naive(),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        usage.days[caller.key_id.as_str()][&admitted[0].at.date_naive()]["charts"],
        LIMIT as i64,
        "the key's usage adds up over the counter and its blocks"
    );

    // A client error gives its unit back to its block: one more request fits, then no more.
    let mut unit = admitted.pop().unwrap();
    give_back(&app, &caller, &mut unit, quota::RefundReason::ClientError).await;
    let fresh = backend.second_container();
    let again = admit_until_refused(&[fresh], &caller, 4).await;
    assert_eq!(again.len(), 1, "the given-back unit, found by the sweep");
    assert_eq!(
        orrery_tests::units_used_today(&app, &caller.account_id, QuotaClass::Charts).await,
        LIMIT as i64
    );
}

/// DynamoDB takes at most so many writes a second on one item; no emulator enforces it, so
/// DynamoDB Local sits behind `orrery_tests::faulty`'s per-item write limit (a test double of
/// that one behaviour; everything else is DynamoDB Local's). An account that is not marked hot
/// meets the limit on its counter, is marked hot by the throttled request itself, and from then
/// on counts on blocks: no request fails, and the count stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_throttled_counter_marks_the_account_hot_and_no_request_fails() {
    let backend = orrery_tests::backend_with(
        Backend::DynamoDbLocal,
        TestOptions {
            config: Config {
                tiers: orrery_tests::tiers_with(&[("free", "charts", 100_000)]),
                ..config()
            },
        },
    )
    .await;
    let limit = orrery_tests::faulty::ItemWriteLimit::new(20);
    let proxy = orrery_tests::faulty::FaultyProxy::start_inspecting(
        &orrery_tests::dynamodb_local_endpoint(),
        limit.plan(),
    )
    .await;
    let proxied = orrery_tests::sdk_config_at(&proxy.url, "us-east-1").await;
    let resources = backend.resources.clone().unwrap();
    let config = (*backend.app.config).clone();
    let store = orrery::store::dynamo::DynamoStore::connect(
        &config.dynamodb,
        &proxied,
        resources.tables.clone(),
        None,
    );
    let app = App::aws_on(
        config,
        &resources,
        backend.sdk.as_ref().unwrap(),
        Arc::new(store),
    );
    let created = orrery_tests::new_account_on(&app, false).await;
    let headers = orrery_tests::bearer_headers(&created.api_key.key);

    let admitted = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (app, headers, admitted) = (app.clone(), headers.clone(), admitted.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                // As a request does: the caller (and so the account's hot mark) from the cache.
                let caller = orrery::access::auth::authenticate(&app, &headers)
                    .await
                    .unwrap();
                match admit(&app, &caller, QuotaClass::Charts, ENDPOINT).await {
                    Ok(_) => admitted.fetch_add(1, Ordering::SeqCst),
                    Err(refused) => panic!("a request was refused: {refused:?}"),
                };
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(admitted.load(Ordering::SeqCst), 400);
    assert!(
        limit.throttled.load(Ordering::SeqCst) > 0,
        "the counter met the item limit"
    );
    let account = orrery::access::accounts::get(app.store.as_ref(), &created.account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(account.hot_quota, "marked hot by the throttled request");
    let caller = orrery::access::auth::authenticate(&app, &headers)
        .await
        .unwrap();
    assert_eq!(
        orrery_tests::units_used_today(&app, &caller.account_id, QuotaClass::Charts).await,
        400,
        "every request counted once"
    );
}

/// Blocks taken under a higher limit are not used after a downgrade: the account, 100 units into
/// its free limit of 230, moves to basic (60 a day) and is refused at once; back on free, the
/// blocks of the free limit serve it again, and never past 230 in all.
async fn a_downgrade_never_admits_past_the_new_limit(kind: Backend) {
    let backend = orrery_tests::backend_with(kind, TestOptions { config: config() }).await;
    let app = backend.app.clone();
    let created = orrery_tests::new_account_on(&app, true).await;
    let headers = orrery_tests::bearer_headers(&created.api_key.key);
    let caller = orrery::access::auth::authenticate(&app, &headers)
        .await
        .unwrap();
    for _ in 0..100 {
        admit(&app, &caller, QuotaClass::Charts, ENDPOINT)
            .await
            .unwrap();
    }
    let retier = async |tier: orrery::access::Tier| {
        orrery::access::manage::update_account(
            &app,
            created.account.id.as_str(),
            orrery::access::manage::AccountPatch {
                tier: Some(tier),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        orrery::access::auth::authenticate(&app, &headers)
            .await
            .unwrap()
    };
    let basic = retier(orrery::access::Tier::Basic).await;
    assert!(
        matches!(
            admit(&app, &basic, QuotaClass::Charts, ENDPOINT).await,
            Err(Refused::Exhausted(_))
        ),
        "100 used is past basic's 60"
    );
    let free = retier(orrery::access::Tier::Free).await;
    let rest = admit_until_refused(&[app.clone(), backend.second_container()], &free, 4).await;
    assert_eq!(rest.len(), 130, "back on free: the rest of its 230");
    assert_eq!(
        orrery_tests::units_used_today(&app, &caller.account_id, QuotaClass::Charts).await,
        LIMIT as i64
    );
}
