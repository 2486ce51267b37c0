from core.routers import Router
from reminders.api.views import ReminderViewSet

router = Router()
router.register(r"tasks/(?P<task_pk>\d+)/reminders", ReminderViewSet, basename="task-reminder")

urlpatterns = router.urls
