//! Personal data in logs: no name, CCCD, ethnicity, religion or birth
//! date ever reaches a log line, a span or an error message, across every
//! request that carries them (captured at TRACE).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Result, ensure};
use hopluu_proto::v1 as pb;
use tonic::{Response, Status};

use crate::harness::*;
use crate::personal_data::*;
use crate::replication::{child, eventually};

/// A tracing subscriber that keeps every span and event, at every level,
/// with all their fields, as text.
#[derive(Clone, Default)]
struct Capture {
    text: Arc<Mutex<String>>,
    off: Arc<AtomicBool>,
    ids: Arc<AtomicU64>,
}

impl Capture {
    fn write(
        &self,
        meta: &tracing::Metadata<'_>,
        record: impl FnOnce(&mut dyn tracing::field::Visit),
    ) {
        let mut line = format!("{} {} {}:", meta.level(), meta.target(), meta.name());
        record(&mut Fields(&mut line));
        line.push('\n');
        self.text.lock().expect("capture").push_str(&line);
    }

    fn text(&self) -> String {
        self.text.lock().expect("capture").clone()
    }

    /// Stops capturing (the subscriber may stay installed process-wide).
    fn stop(&self) {
        self.off.store(true, Ordering::Release);
    }
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        let _ = write!(self.0, " {}={value} ({value:?})", field.name());
    }
}

impl tracing::Subscriber for Capture {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Asked again every time: the capture can be switched off.
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        !self.off.load(Ordering::Acquire)
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.write(span.metadata(), |v| span.record(v));
        tracing::span::Id::from_u64(self.ids.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut line = "record:".to_owned();
        values.record(&mut Fields(&mut line));
        line.push('\n');
        self.text.lock().expect("capture").push_str(&line);
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        self.write(event.metadata(), |v| event.record(v));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The message of a refused request.
fn refused<T>(r: Result<Response<T>, Status>) -> Result<String> {
    match r {
        Ok(_) => anyhow::bail!("expected a refusal"),
        Err(s) => Ok(s.message().to_owned()),
    }
}

/// Every kind of request, with the distinctive person's data, on a node
/// that holds private data, through replication from a province to the
/// national node, and at the national node, which holds none; returns
/// every error message the nodes answered.
async fn everything_with_her_data() -> Result<Vec<String>> {
    let mut errors = Vec::new();
    let node = private_tree().await?;
    let mut m = node.members();
    let add = |unit: &str, input: pb::MemberInput| pb::AddMemberRequest {
        unit_id: unit.into(),
        member: Some(input),
    };
    let her = node.add(HG_A, secret_person()).await?;

    // Invalid requests carrying her data in every field, as typos and
    // shifted spreadsheet columns put it there.
    let variants: Vec<fn(&mut pb::MemberInput)> = vec![
        |i| i.national_id = format!("{CCCD}9"),
        |i| i.national_id = format!("{CCCD}x"),
        |i| i.birth_date = NAME.into(),
        |i| i.birth_date = format!("{BIRTH}x"),
        |i| i.joined_on = BIRTH.into(),
        |i| i.card_number = NAME.into(),
        |i| i.full_name = format!("{NAME}\u{7}"),
        |i| i.full_name = NAME.repeat(8),
        |i| i.ethnicity = ETHNICITY.repeat(20),
        |i| i.religion = format!("{RELIGION}\u{0}"),
        |i| i.position = POSITION.repeat(10),
        |i| i.gender = 99,
    ];
    for (n, edit) in variants.iter().enumerate() {
        let mut input = secret_person();
        input.card_number = format!("HG-78{n:02}");
        edit(&mut input);
        errors.push(refused(m.add_member(add(HG_A, input)).await)?);
    }
    // Her card again (held), her name where ids go.
    errors.push(refused(m.add_member(add(HG_A, secret_person())).await)?);
    errors.push(refused(m.add_member(add(NAME, secret_person())).await)?);
    for r in [
        m.get_member(pb::GetMemberRequest {
            key: Some(pb::get_member_request::Key::MemberId(NAME.into())),
            include_private: true,
        })
        .await,
        m.get_member(pb::GetMemberRequest {
            key: Some(pb::get_member_request::Key::CardNumber(NAME.into())),
            include_private: true,
        })
        .await,
    ] {
        errors.push(refused(r)?);
    }
    for upd in [
        update(&her.id, |r| r.birth_date = Some(NAME.into())),
        update(&her.id, |r| r.birth_date = Some("2090-01-01".into())),
        update(&her.id, |r| r.joined_on = Some("1990-01-01".into())),
        update(&her.id, |r| r.national_id = Some(format!("{CCCD}0"))),
        update(&her.id, |r| r.ethnicity = Some(ETHNICITY.repeat(30))),
        update(NAME, |r| r.full_name = Some(NAME.into())),
    ] {
        errors.push(refused(m.update_member(upd).await)?);
    }

    // Good writes: an update, an import (with bad rows), a transfer.
    m.update_member(update(&her.id, |r| {
        r.position = Some(POSITION.into());
        r.religion = Some(RELIGION.into());
    }))
    .await?;
    let mut shifted = secret_person();
    shifted.card_number = "HG-7702".into();
    (shifted.full_name, shifted.birth_date) = (BIRTH.into(), NAME.into());
    let mut cccd_only = secret_person();
    cccd_only.card_number = "HG-7703".into();
    cccd_only.national_id = format!("{CCCD}{CCCD}");
    let mut fine = secret_person();
    fine.card_number = "HG-7704".into();
    let results = m
        .import_members(pb::ImportMembersRequest {
            rows: vec![
                pb::ImportRow {
                    line: 2,
                    unit_id: HG_A.into(),
                    member: Some(fine.clone()),
                },
                pb::ImportRow {
                    line: 3,
                    unit_id: HG_A.into(),
                    member: Some(shifted),
                },
                pb::ImportRow {
                    line: 4,
                    unit_id: HG_A.into(),
                    member: Some(cccd_only),
                },
                pb::ImportRow {
                    line: 5,
                    unit_id: HG_A.into(),
                    member: Some(fine),
                },
                pb::ImportRow {
                    line: 6,
                    unit_id: NAME.into(),
                    member: Some(secret_person()),
                },
            ],
        })
        .await?
        .into_inner()
        .results;
    ensure!(results.iter().filter(|r| r.errors.is_empty()).count() == 1);
    errors.extend(results.iter().flat_map(|r| {
        r.errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
    }));
    m.transfer_member(pb::TransferMemberRequest {
        member_id: her.id.clone(),
        to_unit_id: HG_B.into(),
        effective_on: String::new(),
        reason: "chuyển công tác".into(),
    })
    .await?;
    m.get_member(pb::GetMemberRequest {
        key: Some(pb::get_member_request::Key::CardNumber(CARD.into())),
        include_private: true,
    })
    .await?;
    m.find_members(pb::FindMembersRequest {
        query: NAME.into(),
        scope_unit_id: String::new(),
        limit: 0,
    })
    .await?;

    // De-identification, twice (the second is refused), and her data again.
    m.deidentify_member(deidentify_by_card(CARD)).await?;
    errors.push(refused(
        m.deidentify_member(deidentify_by_card(CARD)).await,
    )?);
    errors.push(refused(
        m.update_member(update(&her.id, |r| {
            r.full_name = Some(NAME.into());
            r.birth_date = Some(BIRTH.into());
        }))
        .await,
    )?);
    errors.push(refused(
        m.update_member(update(&her.id, |r| r.national_id = Some(CCCD.into())))
            .await,
    )?);
    node.stop().await?;

    // Replication: her record goes up from Hậu Giang's node to the
    // national node (the private roster stays below), and so does its
    // de-identification.
    let national = Node::with_tree().await?;
    let province = child("hg-node", HG, &[("vn", &national)]).await?;
    eventually("the province knows its grassroots unions", || async {
        Ok(province.unit(HG_A).await.is_ok())
    })
    .await?;
    let up = province.add(HG_A, secret_person()).await?;
    eventually("her record at the national node", || async {
        Ok(national.list(HG_A, false, None).await?.total == 1)
    })
    .await?;
    province
        .members()
        .deidentify_member(deidentify_by_card(CARD))
        .await?;
    eventually("her record de-identified at the national node", || async {
        Ok(national.member(&up.id, false).await?.deidentified.is_some())
    })
    .await?;
    province.stop().await?;

    // A node that holds no personal data refuses hers.
    let mut n = national.members();
    errors.push(refused(n.add_member(add(HG_A, secret_person())).await)?);
    errors.push(refused(
        n.import_members(pb::ImportMembersRequest {
            rows: vec![pb::ImportRow {
                line: 7,
                unit_id: HG_A.into(),
                member: Some(secret_person()),
            }],
        })
        .await,
    )?);
    errors.push(refused(
        n.deidentify_member(deidentify_by_card(CARD)).await,
    )?);
    national.stop().await?;
    Ok(errors)
}

/// Everything the node logs, at every level (TRACE included, spans and
/// their fields too, from every task and blocking thread of its runtime),
/// and every error message it answers, while it handles her data: none of
/// it contains her name, CCCD, ethnicity, religion, birth date or position.
#[test]
fn personal_data_stays_out_of_logs_and_error_messages() -> Result<()> {
    let capture = Capture::default();
    let dispatch = tracing::Dispatch::new(capture.clone());
    // The runtime's own threads (tasks, blocking pool) log into the capture;
    // threads outside it (SQLite's connection workers) reach it through the
    // global default when this test binary has none yet. Other tests'
    // events may land there too: they never hold these strings.
    let _ = tracing::dispatcher::set_global_default(dispatch.clone());
    let _default = tracing::dispatcher::set_default(&dispatch);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start({
            let dispatch = dispatch.clone();
            move || std::mem::forget(tracing::dispatcher::set_default(&dispatch))
        })
        .build()?;
    let errors = runtime.block_on(everything_with_her_data());
    drop(runtime);
    capture.stop();
    let errors = errors?;
    let logs = capture.text();
    // The capture saw the node: its gRPC spans, SQL and its own events.
    for seen in [
        "sync session established",
        "grpc",
        "/hopluu.v1.MemberService/DeidentifyMember",
        "member de-identified on request",
    ] {
        assert!(logs.contains(seen), "the capture missed {seen:?}");
    }
    assert!(errors.len() > 25, "{errors:?}");
    for e in &errors {
        assert_clean("an error message", e);
    }
    for s in SECRETS {
        if let Some(at) = logs.find(s) {
            let line = logs[..at].rfind('\n').map_or(0, |n| n + 1);
            let end = logs[at..].find('\n').map_or(logs.len(), |n| at + n);
            panic!("the logs contain {s:?}: {}", &logs[line..end]);
        }
    }
    Ok(())
}
