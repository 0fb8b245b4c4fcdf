# Stage 1, class path: self-training with class-mix bridging (METHOD.md 2.3).
_base_ = ['./st_cutmix.py']
uda = dict(mask='class')  # half of the source classes (255 counts) pasted
