"""t2igan.losses"""
