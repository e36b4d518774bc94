"""The old path of the ZIP reading that prediction inputs share with the ZIP source: it lives in
`emolens.data.sources.zip_archive`. Kept while `predict/inputs.py` imports from here; it goes once that import
names the new module."""

from emolens.data.sources.zip_archive import list_zip_members, read_zip_member

__all__ = ["list_zip_members", "read_zip_member"]
