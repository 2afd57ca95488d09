"""The shipped pose presets: one OpenPose JSON file per pose and thumbnails/<slug>.png.

core.pose.presets reads them; tools/build_pose_presets.py writes them (run it after editing a pose there).
"""
