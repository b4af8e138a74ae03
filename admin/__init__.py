"""pyimapd-mailutil: check, repair, create, delete, rename, copy, move and transfer mailboxes.

An administrator's tool in the spirit of UW's mailutil, written against the
mailstore Store/Mailbox interface so that every mail_location driver serves.
admin.cli is the entry point; each command lives in its own module.
"""
