//! COCO (object detection) import and export.
