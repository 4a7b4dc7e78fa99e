//! The reads: a user by id (strongly consistent), by email address and in
//! creation order (on the indexes), and a user's history (its partition).

use super::keys::{Item, s, user_key, values};
use super::{BY_CREATION_INDEX, BY_EMAIL_INDEX, DynamoStore, classify, from_item, to_user};
use crate::StoreError;
use crate::item::{ALL_USERS, EventItem, event_sk, user_pk};
use common::domain::{Email, HistoryEvent, Page, PageRequest, User, UserId, Version};

impl DynamoStore {
    /// The user with this id, read with strong consistency.
    pub(super) async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(user_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        output.item.map(to_user).transpose()
    }

    /// The user holding `email`, from the `byEmail` index.
    pub(super) async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let condition = "email = :email";
        let users = self
            .query_users(
                BY_EMAIL_INDEX,
                condition,
                values([(":email", s(email.as_str()))]),
                1,
            )
            .await?;
        Ok(users.into_iter().next())
    }

    /// A page of users in creation order, from the `byCreation` index.
    pub(super) async fn users_after(
        &self,
        page: PageRequest<UserId>,
    ) -> Result<Page<User>, StoreError> {
        let (condition, bound) = match page.after {
            Some(id) => (
                "gsi1pk = :all AND gsi1sk > :after",
                values([(":all", s(ALL_USERS)), (":after", s(id.to_string()))]),
            ),
            None => ("gsi1pk = :all", values([(":all", s(ALL_USERS))])),
        };
        let limit = page.size.get() + 1;
        let users = self
            .query_users(BY_CREATION_INDEX, condition, bound, limit)
            .await?;
        Ok(Page::from_one_extra(users, page.size))
    }

    /// A page of a user's history, from its partition.
    pub(super) async fn events_after(
        &self,
        user: UserId,
        page: PageRequest<Version>,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        let from = page.after.map_or(Version::new(0), Version::next);
        let bound = values([
            (":pk", s(user_pk(user))),
            (":from", s(event_sk(from))),
            (":to", s(event_sk(Version::new(u64::MAX)))),
        ]);
        let condition = "pk = :pk AND sk BETWEEN :from AND :to";
        let items = self
            .query(None, condition, bound, page.size.get() + 1)
            .await?;
        let events = items
            .into_iter()
            .map(|item| from_item::<EventItem>(item)?.try_into())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_one_extra(events, page.size))
    }

    /// Items matching `condition` on the table or an index, in key order.
    async fn query(
        &self,
        index: Option<&str>,
        condition: &str,
        values: Item,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(classify)?;
        Ok(output.items.unwrap_or_default())
    }

    async fn query_users(
        &self,
        index: &str,
        condition: &str,
        values: Item,
        limit: usize,
    ) -> Result<Vec<User>, StoreError> {
        let items = self.query(Some(index), condition, values, limit).await?;
        items.into_iter().map(to_user).collect()
    }
}
