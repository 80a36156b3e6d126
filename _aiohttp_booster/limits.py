"""Limits both libraries put on what they are given."""

__all__ = ["MAX_SECONDS"]

#: the longest duration a setting takes (366 days): beyond it, a typo or hostile input (and a
#: huge int that a float cannot hold)
MAX_SECONDS = 366 * 86_400.0
