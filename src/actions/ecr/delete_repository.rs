//! `ecr.delete-repository`: deletes the matched repositories; a repository that still holds
//! images only with `force = true` (the images are counted in `find`, so a dry run shows them).

use std::sync::Arc;

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ecr::operation::delete_repository::DeleteRepositoryError;

use crate::actions::{
    Acted, Action, ActionSpec, FieldKind, FieldSpec, InputError, ResourceFilter, StepInput,
    COMMON_FILTER_FIELDS,
};
use crate::aws::{to_chrono, Aws, AwsError, ErrorClass};
use crate::resource::Resource;

/// `ecr.delete-repository`: deletes the matched repositories; their images only with `force`.
pub static DELETE_REPOSITORY: ActionSpec = ActionSpec {
    name: "ecr.delete-repository",
    summary: "Delete ECR repositories (and their images, with force = true)",
    selector: &[
        FieldSpec {
            required: true,
            ..COMMON_FILTER_FIELDS[0]
        },
        COMMON_FILTER_FIELDS[1],
        COMMON_FILTER_FIELDS[2],
    ],
    options: &[FieldSpec {
        name: "force",
        kind: FieldKind::Bool,
        required: false,
        default: Some("false"),
        help: "delete the images too; without it a repository that holds images is an error",
    }],
    rules: &[],
    permissions: &[
        "ecr:DescribeRepositories",
        "ecr:ListTagsForResource",
        "ecr:ListImages",
        "ecr:DeleteRepository",
    ],
    build: |input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Ok(Arc::new(DeleteRepository {
            filter: input.filter("name"),
            force: input.flag("force"),
        }))
    },
};

struct DeleteRepository {
    filter: ResourceFilter,
    force: bool,
}

const IMAGE_COUNT: &str = "image_count";

impl DeleteRepository {
    async fn image_count(&self, aws: &Aws, repository: &str) -> Result<usize, AwsError> {
        let mut pages = aws
            .ecr
            .list_images()
            .repository_name(repository)
            .into_paginator()
            .send();
        let mut count = 0;
        while let Some(page) = pages.next().await {
            count += page
                .map_err(|e| AwsError::from_sdk("ECR.ListImages", e))?
                .image_ids()
                .len();
        }
        Ok(count)
    }
}

#[async_trait]
impl Action for DeleteRepository {
    fn resource_kind(&self) -> &'static str {
        "ECR repository"
    }

    async fn find(&self, aws: &Aws) -> Result<Vec<Resource>, AwsError> {
        let mut request = aws.ecr.describe_repositories();
        if let Some(name) = self.filter.name.as_ref().and_then(|p| p.exact()) {
            request = request.repository_names(name);
        }
        let mut pages = request.into_paginator().send();
        let now = chrono::Utc::now();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    let e = AwsError::from_sdk("ECR.DescribeRepositories", e);
                    if e.class == ErrorClass::NotFound {
                        return Ok(found);
                    }
                    return Err(e);
                }
            };
            for repo in page.repositories() {
                let (Some(name), Some(arn)) = (repo.repository_name(), repo.repository_arn())
                else {
                    continue;
                };
                let created = repo.created_at().and_then(to_chrono);
                // Name first, so that tags are fetched only for repositories that could match.
                if self.filter.name.as_ref().is_some_and(|p| !p.matches(name)) {
                    continue;
                }
                let tags = async {
                    let tags = aws
                        .ecr
                        .list_tags_for_resource()
                        .resource_arn(arn)
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk("ECR.ListTagsForResource", e))?;
                    Ok::<BTreeMap<String, String>, AwsError>(
                        tags.tags()
                            .iter()
                            .map(|t| (t.key().to_string(), t.value().to_string()))
                            .collect(),
                    )
                };
                // Without a tag condition the name and age decide already: the tags (for the
                // protect tag) and the images are asked at once. With one, the images of a
                // repository are counted only once its tags match.
                let (tags, images) = if self.filter.tags.is_empty() {
                    if self
                        .filter
                        .matches(name, &BTreeMap::new(), created, now)
                        .is_none()
                    {
                        continue;
                    }
                    let (tags, images) = tokio::try_join!(tags, self.image_count(aws, name))?;
                    (tags, Some(images))
                } else {
                    (tags.await?, None)
                };
                let Some(why) = self.filter.matches(name, &tags, created, now) else {
                    continue;
                };
                let images = match images {
                    Some(images) => images,
                    None => self.image_count(aws, name).await?,
                };
                let mut resource = Resource::new("ECR repository", arn, name, why)
                    .with_attribute(IMAGE_COUNT, images.to_string());
                resource.created = created;
                resource.tags = tags;
                found.push(resource);
            }
        }
        Ok(found)
    }

    async fn act(&self, aws: &Aws, resource: &Resource) -> Result<Acted, AwsError> {
        let images = resource.attribute(IMAGE_COUNT).unwrap_or("some");
        if !self.force && images != "0" {
            return Err(AwsError {
                class: ErrorClass::Fatal,
                code: None,
                operation: "ECR.DeleteRepository".into(),
                message: format!(
                    "repository {} still holds {images} images; set `force = true` on the step to delete them with it",
                    resource.name
                ),
            });
        }
        let result = aws
            .ecr
            .delete_repository()
            .repository_name(&resource.name)
            .force(self.force)
            .send()
            .await;
        match result {
            Ok(_) if self.force && images != "0" => {
                Ok(Acted::Done(format!("deleted with its {images} images")))
            }
            Ok(_) => Ok(Acted::Done("deleted".into())),
            Err(e) => match e.as_service_error() {
                Some(DeleteRepositoryError::RepositoryNotFoundException(_)) => {
                    Ok(Acted::AlreadyGone)
                }
                // Images were pushed after `find` counted them: say so instead of deleting them.
                Some(DeleteRepositoryError::RepositoryNotEmptyException(_)) => Err(AwsError {
                    class: ErrorClass::Fatal,
                    code: Some("RepositoryNotEmptyException".into()),
                    operation: "ECR.DeleteRepository".into(),
                    message: format!(
                        "repository {} is not empty; set `force = true` on the step to delete its images with it",
                        resource.name
                    ),
                }),
                _ => Err(AwsError::from_sdk("ECR.DeleteRepository", e)),
            },
        }
    }
}
