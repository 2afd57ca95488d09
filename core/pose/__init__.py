"""OpenPose skeletons: the pose model, its JSON format, and (in core.pose.render, which needs
cv2 and so stays out of this package's imports) the ControlNet control images."""

from core.pose.openpose_json import PoseFormatError
from core.pose.skeleton import BODY_KEYPOINTS, LIMBS, Keypoint, PersonPose, PoseSkeleton, joint_index

__all__ = ["BODY_KEYPOINTS", "LIMBS", "Keypoint", "PersonPose", "PoseFormatError", "PoseSkeleton", "joint_index"]
