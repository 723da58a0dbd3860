"""t2igan.sampling"""
