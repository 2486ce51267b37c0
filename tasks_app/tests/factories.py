import factory
from django.contrib.auth import get_user_model

from tasks_app.models import Comment, Membership, Project, Role, Task
from tasks_app.services.search import search_reindex


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("pw-123456")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Project {n}")
    owner = factory.SubFactory(UserFactory)

    @factory.post_generation
    def owner_membership(obj, create, extracted, **kwargs):
        if create:
            Membership.objects.get_or_create(project=obj, user=obj.owner, defaults={"role": Role.OWNER})


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task
        skip_postgeneration_save = True

    project = factory.SubFactory(ProjectFactory)
    title = factory.Sequence(lambda n: f"Task {n}")
    created_by = factory.LazyAttribute(lambda t: t.project.owner)

    @factory.post_generation
    def search_document(obj, create, extracted, **kwargs):
        # Rows made here skip the services, which keep PostgreSQL's search document up to date.
        if create:
            search_reindex(task_ids=[obj.pk])


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comment
        skip_postgeneration_save = True

    task = factory.SubFactory(TaskFactory)
    author = factory.LazyAttribute(lambda c: c.task.project.owner)
    body = "a comment"

    @factory.post_generation
    def search_document(obj, create, extracted, **kwargs):
        if create:
            search_reindex(task_ids=[obj.task_id])
