"""Identity: faces, face-identity methods and how consistent each image stayed.

face_analysis.py  insightface detection and embeddings from the registered face models
keypoints.py      face keypoints for InstantID's control image
consistency.py    how close each generated image stays to its character's references
"""
