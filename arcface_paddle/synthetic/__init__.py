"""Seeded synthetic people drawn with OpenCV: training and test data for recognition and detection."""
