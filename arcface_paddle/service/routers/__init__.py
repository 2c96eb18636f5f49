"""One router per resource: recognition (photos in, faces out), subjects, gallery, health."""
