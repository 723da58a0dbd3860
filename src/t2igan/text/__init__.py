"""t2igan.text"""
