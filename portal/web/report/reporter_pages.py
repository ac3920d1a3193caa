"""The reporter's pages beyond the one-page form and the status page, registered on the blueprint by importing
them: Exit this page (leave), the question pages (journey)."""

from portal.web.report import journey, leave  # noqa: F401
