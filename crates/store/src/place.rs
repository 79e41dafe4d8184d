//! Placing a new member: the roster bucket it joins (by the counts the
//! write has seen so far), its public record, and its private entry when
//! it has personal data. One path for the node's add and import and for
//! every fixture that writes members as the node does.

use std::collections::HashMap;

use hopluu_model::member::{self, Member, NewMember, PrivateData};
use hopluu_model::{Author, MemberId, UnitId};

use crate::{Result, WriteTx};

impl WriteTx<'_> {
    /// The bucket member `id` joins, given the members per bucket so far
    /// (a full bucket is passed over).
    pub fn bucket_for(&self, id: &MemberId, counts: &HashMap<u32, usize>) -> u32 {
        member::choose_bucket(id, self.store().options().bucket_size, |b| {
            counts.get(&b).copied().unwrap_or(0)
        })
    }

    /// The bucket new member `id` joins, counted in `counts` (the members
    /// per bucket of its unit, from [`WriteTx::bucket_counts`]), so that a
    /// batch of members fills the buckets as it goes.
    pub fn take_bucket(&self, id: &MemberId, counts: &mut HashMap<u32, usize>) -> u32 {
        let bucket = self.bucket_for(id, counts);
        *counts.entry(bucket).or_default() += 1;
        bucket
    }

    /// Writes new member `id` of `unit` in this transaction. `counts`
    /// holds the members per bucket of `unit` (start from
    /// [`WriteTx::bucket_counts`]) and is updated, so a batch of members
    /// fills the buckets as it goes. Returns the record and its bucket.
    pub async fn add_new_member(
        &mut self,
        author: &Author,
        unit: &UnitId,
        id: &MemberId,
        new: &NewMember,
        counts: &mut HashMap<u32, usize>,
    ) -> Result<(Member, u32)> {
        let bucket = self.take_bucket(id, counts);
        let m = member::joining(id.clone(), unit.clone(), new);
        self.add_new_members(
            author,
            unit,
            bucket,
            std::slice::from_ref(&m),
            std::slice::from_ref(&new.private),
        )
        .await?;
        Ok((m, bucket))
    }

    /// Writes new members of one bucket of `unit` (placed with
    /// [`WriteTx::take_bucket`]) in one change to its roster, and each
    /// one's private entry (`private`, in the same order) when it has
    /// personal data.
    pub async fn add_new_members(
        &mut self,
        author: &Author,
        unit: &UnitId,
        bucket: u32,
        members: &[Member],
        private: &[PrivateData],
    ) -> Result<()> {
        debug_assert_eq!(members.len(), private.len());
        member::add_many(
            self.doc(&member::roster_doc(unit, bucket)).await?,
            author,
            unit,
            bucket,
            members,
        )?;
        let entries: Vec<(&MemberId, &PrivateData)> = members
            .iter()
            .zip(private)
            .filter(|(_, p)| !p.is_empty())
            .map(|(m, p)| (&m.id, p))
            .collect();
        if !entries.is_empty() {
            member::put_private_many(
                self.doc(&member::private_doc(unit, bucket)).await?,
                author,
                unit,
                bucket,
                &entries,
            )?;
        }
        Ok(())
    }
}
