"""Extra links whose URL the task stores in XCom while it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey


class StoredUrlLink(BaseOperatorLink):
    """A link to a URL that the task computed at run time and stored under :attr:`xcom_key`."""

    name = "link"

    @classmethod
    def persist(cls, context: Context, url: str) -> None:
        """Store the link's URL for this task instance.

        :param context: the task's context.
        :param url: where the link points.
        """
        context["ti"].xcom_push(key=cls().xcom_key, value=url)

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The URL stored by :meth:`persist`, or an empty string before the task stored one.

        :param operator: the task's operator.
        :param ti_key: the task instance.
        """
        from airflow.sdk.execution_time.xcom import XCom

        value: Any = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(value) if value else ""
