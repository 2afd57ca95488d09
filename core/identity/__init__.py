"""Identity: faces, face-identity methods and how consistent each image stayed."""
